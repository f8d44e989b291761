package provider

import "errors"

// Error is an error that knows whether its call reached the provider. The
// adapters' CallError types implement it; Reached finds it anywhere in a
// chain of wrapped errors.
type Error interface {
	error
	// MayHaveReached reports whether the request reached, or may have
	// reached, the provider: its headers were written or an answer came.
	// False means nothing was sent, so nothing was done or charged.
	MayHaveReached() bool
}

// Reached reports whether err comes from a call that reached, or may have
// reached, a provider. The outermost Error in err's chain decides; an error
// with none (a bad argument, a store failure) reached no provider.
func Reached(err error) bool {
	var e Error
	return errors.As(err, &e) && e.MayHaveReached()
}

// AfterCall marks err as a refusal that comes after the call's provider
// request was made or attempted: a store write that failed once the
// provider had created something, a registration the provider reported as
// failed, a request whose own error cannot rule out that it went out.
// Reached(AfterCall(err)) is true whatever err's chain says. AfterCall(nil)
// is nil.
func AfterCall(err error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, reached: true}
}

// BeforeCall marks err as a refusal made before the call's provider request
// (the guard's steps before the handler): Reached(BeforeCall(err)) is false
// even when a read made to decide, such as a quote or a gate's lookup,
// reached the provider. BeforeCall(nil) is nil.
func BeforeCall(err error) error {
	if err == nil {
		return nil
	}
	return &marked{err: err, reached: false}
}

// marked states reachability for the error it wraps; code, public message
// and details still come from that error.
type marked struct {
	err     error
	reached bool
}

var _ Error = (*marked)(nil)

func (m *marked) Error() string        { return m.err.Error() }
func (m *marked) Unwrap() error        { return m.err }
func (m *marked) MayHaveReached() bool { return m.reached }
