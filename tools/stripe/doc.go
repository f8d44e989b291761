// Package stripe is tollgate's adapter to Stripe, through stripe-go v79
// (SPEC §11): the principal's customer, Checkout in setup mode (the human
// saves a card on a Stripe-hosted page; tollgate keeps only the payment
// method id), prices by lookup key, and subscriptions.
//
//	GET  /v1/customers?email=…                    FindOrCreateCustomer (find)
//	POST /v1/customers                            FindOrCreateCustomer (create)
//	POST /v1/checkout/sessions                    CreateSetupCheckout
//	GET  /v1/checkout/sessions/{id}?expand[]=setup_intent   CheckoutResult
//	GET  /v1/payment_methods?customer=…&type=card PaymentMethods
//	GET  /v1/prices?lookup_keys[]=…&active=true   PriceForPlan
//	POST /v1/subscriptions                        StartSubscription
//
// Each Client builds its own stripe-go backend, whose URL is configurable
// (sandbox → the fixtures/stripe fake, production → api.stripe.com), and
// never touches stripe-go's global backends. Network retries are off, and
// requests go through the shared provider client (tools/provider), which
// records whether each reached the wire and follows no redirect.
//
// Every POST carries the caller's idempotency key (SPEC §9.2): stripe-go
// would otherwise invent a random one per call, and a retry after a
// timeout could start a second subscription. Callers derive the key
// deterministically from their own; the same key and parameters make
// Stripe replay its first answer (Subscription.Replayed).
//
// Every failure is a *fault.Error with code provider_error (5xx, timeout,
// no or unreadable answer), provider_refused (4xx), card_declined (402),
// payment_incomplete or checkout_expired, whose public message says
// whether the request may have reached Stripe and whether anything may have
// been charged. Its cause is a *CallError carrying the HTTP status,
// Stripe's Request-Id for the audit trail, Stripe's error code and whether
// the request reached Stripe (a provider.Error: provider.Reached) or may
// have charged (MayHaveCharged). Successful results carry the Request-Id
// too.
//
// The package never decides whether a caller may spend: holds, caps and
// gates come first. It never reads the secret key from anywhere but its
// Config (in production the server fills it from STRIPE_SECRET_KEY, never
// from a flag), never logs it, and drops Stripe's 401 message, which names
// part of it.
package stripe
