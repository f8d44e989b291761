package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
)

// An Attestor yields the agent's workload attestation: a JWT that
// tollgate's attestors verify (SPEC §3), sent as the exchange's
// actor_token. It is asked once per exchange, so a rotating source stays
// current.
type Attestor interface {
	Attestation(ctx context.Context) (string, error)
}

// AttestorFunc adapts a function, e.g. one that fetches a JWT-SVID from
// the SPIFFE Workload API:
//
//	agent.AttestorFunc(func(ctx context.Context) (string, error) {
//		svid, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: issuer})
//		if err != nil {
//			return "", err
//		}
//		return svid.Marshal(), nil
//	})
type AttestorFunc func(ctx context.Context) (string, error)

// Attestation calls f.
func (f AttestorFunc) Attestation(ctx context.Context) (string, error) { return f(ctx) }

// maxTokenBytes is the largest token tollgate accepts in an exchange.
const maxTokenBytes = 16 << 10

// JWTFile reads the attestation from a file on every exchange, as
// Kubernetes projected service-account tokens, spiffe-helper and CI
// runners rotate them in place.
func JWTFile(path string) Attestor { return jwtFile(path) }

type jwtFile string

func (p jwtFile) Attestation(context.Context) (string, error) {
	f, err := os.Open(string(p))
	if err != nil {
		return "", &Error{Op: "attest", Code: NoAttestation, Err: err}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return "", &Error{Op: "attest", Code: NoAttestation, Err: err}
	}
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return "", &Error{Op: "attest", Code: NoAttestation, Description: fmt.Sprintf("%s is empty", string(p))}
	case len(b) > maxTokenBytes:
		return "", &Error{Op: "attest", Code: NoAttestation, Description: fmt.Sprintf("%s is larger than %d bytes; it is not a workload token", string(p), maxTokenBytes)}
	}
	return string(b), nil
}
