package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

// checkPolicy refuses what Cedar accepts but tollgate must not: names
// outside the model, and a permit that could allow impersonation without
// naming the pair. Both checks read the policy's JSON form (Cedar's
// documented policy JSON format) rather than cedar-go's experimental AST.
func checkPolicy(p *cedar.Policy) error {
	raw, err := p.MarshalJSON()
	if err != nil {
		return fmt.Errorf("cannot be inspected: %w", err)
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return fmt.Errorf("cannot be inspected: %w", err)
	}
	if err := walkNames(tree); err != nil {
		return err
	}
	var head policyHead
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("cannot be inspected: %w", err)
	}
	return head.checkImpersonation()
}

// walkNames refuses references to entity types or actions outside the
// model. Without a schema Cedar accepts them and the policy silently never
// matches: a forbid on Tollgate::Action::"impersonat" protects nothing.
func walkNames(n any) error {
	switch n := n.(type) {
	case map[string]any:
		// An entity reference is {"type": T, "id": I} and an `is` test
		// carries "entity_type": T; record literals nest their values as
		// objects, so they cannot be mistaken for either.
		typ, typOK := n["type"].(string)
		id, idOK := n["id"].(string)
		if typOK && idOK {
			if err := checkRef(types.EntityType(typ), types.String(id)); err != nil {
				return err
			}
		}
		if et, ok := n["entity_type"].(string); ok {
			if err := checkType(types.EntityType(et)); err != nil {
				return err
			}
		}
		for _, v := range n {
			if err := walkNames(v); err != nil {
				return err
			}
		}
	case []any:
		for _, v := range n {
			if err := walkNames(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// knownTypes returns the entity types tollgate ever puts in a request.
func knownTypes() []types.EntityType {
	return []types.EntityType{typeUser, typeAgent, typeScope, typeProvider, typeAction}
}

// knownActions returns the ids of the Tollgate::Action entities.
func knownActions() []types.String {
	return []types.String{actActFor, actImpersonate, actUseScope, actSpend}
}

func checkRef(typ types.EntityType, id types.String) error {
	if err := checkType(typ); err != nil {
		return err
	}
	if known := knownActions(); typ == typeAction && !slices.Contains(known, id) {
		names := make([]string, len(known))
		for i, a := range known {
			names[i] = fmt.Sprintf("%q", string(a))
		}
		return fmt.Errorf("names unknown action %s::%q; known actions: %s", typ, id, strings.Join(names, ", "))
	}
	return nil
}

func checkType(typ types.EntityType) error {
	if known := knownTypes(); !slices.Contains(known, typ) {
		names := make([]string, len(known))
		for i, t := range known {
			names[i] = string(t)
		}
		return fmt.Errorf("names unknown entity type %s; known types: %s", typ, strings.Join(names, ", "))
	}
	return nil
}

// policyHead is the effect and scope of a policy in Cedar's policy JSON.
type policyHead struct {
	Effect    string      `json:"effect"`
	Principal policyScope `json:"principal"`
	Action    policyScope `json:"action"`
	Resource  policyScope `json:"resource"`
}

type policyScope struct {
	Op       string      `json:"op"`
	Entity   *entityRef  `json:"entity"`
	Entities []entityRef `json:"entities"`
}

type entityRef struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// checkImpersonation enforces SPEC §4: impersonation is "allowed only where
// policy names the pair explicitly". A permit whose action scope admits
// impersonate must pin both principal and resource with ==; conditions do
// not count, the pair must be readable from the scope. Actions have no
// parents in tollgate's requests, so `action in A` admits exactly A; an
// action scope of any other shape is taken to admit everything.
func (h policyHead) checkImpersonation() error {
	if h.Effect != "permit" {
		return nil
	}
	admits := true
	if h.Action.Op == "==" || h.Action.Op == "in" {
		refs := h.Action.Entities
		if h.Action.Entity != nil {
			refs = append(refs, *h.Action.Entity)
		}
		admits = slices.Contains(refs, entityRef{Type: string(typeAction), ID: string(actImpersonate)})
	}
	if !admits || h.Principal.Op == "==" && h.Resource.Op == "==" {
		return nil
	}
	return fmt.Errorf("could permit impersonate without naming the pair; impersonation needs "+
		"principal == %s::\"…\" and resource == %s::\"…\" in the policy scope (SPEC §4), "+
		"otherwise list the policy's actions and leave impersonate out", typeAgent, typeAgent)
}
