// Package domainname parses untrusted domain names once into Name, the one
// canonical form tollgate passes around: lowercase A-labels (IDNA2008,
// punycode for internationalised labels), at least two labels, no trailing
// dot. It also decides whether a name an agent sent is exactly one that a
// token allows, or only looks like one.
//
// Parse is what a person may type: any case and one trailing dot are
// accepted and canonicalised, so the caller can show the canonical form.
// ParseExact is for matching against tollgate:resources: a differently
// cased, trailing-dot or otherwise differently written variant is refused.
// Both refuse what would let a name display as one thing and register as
// another: invisible and compatibility characters, mixed scripts within a
// label, and labels that are whole-label confusables of ASCII.
//
// The package never resolves names, never does I/O and never decides which
// names a caller may use: the allowed list always comes from the caller.
// Every refusal is a *fault.Error with code invalid_domain,
// lookalike_domain or resource_forbidden.
package domainname
