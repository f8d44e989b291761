package policy

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

//go:embed sandbox.cedar
var sandboxSource []byte

// maxPolicyBytes bounds a policy file; real ones are a few kilobytes.
const maxPolicyBytes = 4 << 20

// Engine is a parsed, checked exchange policy. It is immutable and safe for
// concurrent use. The zero Engine (and a nil *Engine) denies everything.
type Engine struct {
	name   string
	digest string
	set    *cedar.PolicySet
	// memo remembers decisions: the policy set never changes after Parse
	// and a decision depends on nothing but its request, so the same
	// agent, subject, action and resource always decide the same way.
	memo *decisions
}

// Sandbox returns the engine for the embedded sandbox policy.
func Sandbox() (*Engine, error) { return Parse("sandbox.cedar", sandboxSource) }

// LoadFile reads and parses the policy file at path.
func LoadFile(path string) (*Engine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fault.Wrap(err, InvalidPolicy, fmt.Sprintf("policy: cannot open %s; check the policy file path", path))
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxPolicyBytes+1))
	if err != nil {
		return nil, fault.Wrap(err, InvalidPolicy, fmt.Sprintf("policy: cannot read %s", path))
	}
	if len(src) > maxPolicyBytes {
		return nil, fault.Newf(InvalidPolicy, "policy: %s is larger than %d bytes", path, maxPolicyBytes)
	}
	return Parse(path, src)
}

// Parse parses Cedar policies from src; name appears in positions and
// messages. Each policy is named by its @id annotation, or else by Cedar's
// positional id ("policy0", "policy1", …). Parse refuses, with code
// InvalidPolicy and a file:line:column position:
//   - syntax errors;
//   - two policies with the same id, or an empty @id;
//   - a reference to an entity type or action outside the Tollgate model,
//     since such a policy could never match and its author meant something else;
//   - a permit that could allow impersonate without naming the pair
//     (principal == … and resource == … in its scope; SPEC §4).
//
// An empty source is valid and denies everything.
func Parse(name string, src []byte) (*Engine, error) {
	list, err := cedar.NewPolicyListFromBytes(name, src)
	if err != nil {
		// cedar-go reports positions as "<input>:line:col"; name the file.
		msg := strings.ReplaceAll(err.Error(), "<input>", name)
		msg = strings.TrimPrefix(msg, "parser error: ")
		msg = strings.Replace(msg, "parse error at ", "syntax error at ", 1)
		return nil, fault.Wrap(err, InvalidPolicy, fmt.Sprintf("policy: %s; fix the policy file", msg))
	}
	set := cedar.NewPolicySet()
	for i, p := range list {
		id := fmt.Sprintf("policy%d", i)
		if v, ok := p.Annotations()["id"]; ok {
			if v == "" {
				return nil, fault.Newf(InvalidPolicy, "policy: %s: empty @id; give the policy a name", position(p.Position()))
			}
			id = string(v)
		}
		if err := checkPolicy(p); err != nil {
			return nil, fault.Newf(InvalidPolicy, "policy: %s: policy %q %v", position(p.Position()), id, err)
		}
		if !set.Add(cedar.PolicyID(id), p) {
			return nil, fault.Newf(InvalidPolicy, "policy: %s: policy id %q is used twice; ids must be unique", position(p.Position()), id)
		}
	}
	sum := sha256.Sum256(src)
	return &Engine{name: name, digest: "sha256:" + hex.EncodeToString(sum[:]), set: set, memo: newDecisions(maxMemo)}, nil
}

// Name returns the name the policy was parsed under (its file path).
func (e *Engine) Name() string {
	if e == nil {
		return ""
	}
	return e.name
}

// Digest returns "sha256:<hex>" of the policy source, so that the audit
// trail can say which version of the policy decided.
func (e *Engine) Digest() string {
	if e == nil {
		return ""
	}
	return e.digest
}

func position(p types.Position) string {
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}
