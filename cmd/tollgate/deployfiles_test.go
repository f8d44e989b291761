package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// The deployment files parse and keep their invariants: the image is
// multi-stage, static, -tags nosandbox, FROM scratch, non-root, and names
// no registry host; the Kubernetes Deployment runs 2 non-root replicas on
// a read-only root file system with readiness on /readyz and liveness on
// /healthz; no secret value is inlined anywhere; every flag the files pass
// exists on `tollgate serve`; the compose file has two replicas, Redis and
// an OTLP collector. (Nothing here builds or runs an image.)
func TestDeployFiles(t *testing.T) {
	root := filepath.Join("..", "..")
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	serve := flagsOf(t, "serve")

	df := read("Dockerfile")
	var froms []string
	for _, l := range strings.Split(df, "\n") {
		if f := strings.Fields(l); len(f) > 1 && strings.EqualFold(f[0], "FROM") {
			froms = append(froms, f[1])
			if host, _, ok := strings.Cut(f[1], "/"); ok && strings.ContainsAny(host, ".:") {
				t.Errorf("Dockerfile names a registry host: %s", l)
			}
		}
	}
	if len(froms) < 2 || froms[len(froms)-1] != "scratch" {
		t.Errorf("Dockerfile stages %v: want a build stage and a final FROM scratch", froms)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-tags nosandbox", "USER 65532:65532", "ca-certificates.crt", "/usr/share/zoneinfo"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	checkFlags(t, "Dockerfile", df, serve)

	docs := yamlDocs(t, read("deploy/kubernetes/tollgate.yaml"))
	kinds := map[string]map[string]any{}
	for _, d := range docs {
		kinds[d["kind"].(string)] = d
	}
	for _, k := range []string{"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"} {
		if kinds[k] == nil {
			t.Errorf("deploy/kubernetes lacks a %s", k)
		}
	}
	if dep := kinds["Deployment"]; dep != nil {
		spec := dep["spec"].(map[string]any)
		if spec["replicas"] != 2 {
			t.Errorf("replicas = %v, want 2", spec["replicas"])
		}
		pod := spec["template"].(map[string]any)["spec"].(map[string]any)
		psc := pod["securityContext"].(map[string]any)
		if psc["runAsNonRoot"] != true || psc["runAsUser"] != 65532 {
			t.Errorf("pod securityContext %v: want runAsNonRoot and uid 65532", psc)
		}
		for _, c := range pod["containers"].([]any) {
			c := c.(map[string]any)
			sc := c["securityContext"].(map[string]any)
			if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false {
				t.Errorf("container securityContext %v: want a read-only root and no privilege escalation", sc)
			}
			if p := probePath(c, "readinessProbe"); p != "/readyz" {
				t.Errorf("readiness probe on %q, want /readyz", p)
			}
			if p := probePath(c, "livenessProbe"); p != "/healthz" {
				t.Errorf("liveness probe on %q, want /healthz", p)
			}
			var args []string
			for _, a := range c["args"].([]any) {
				args = append(args, a.(string))
			}
			checkFlags(t, "the Deployment", strings.Join(args, "\n"), serve)
			for _, e := range c["env"].([]any) {
				e := e.(map[string]any)
				if _, inline := e["value"]; inline && secretish(e["name"].(string)) {
					t.Errorf("env %v inlines a secret; use secretKeyRef", e["name"])
				}
				if n := e["name"].(string); strings.HasPrefix(n, "TOLLGATE_") && serve[strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(n, "TOLLGATE_"), "_", "-"))] == false &&
					!strings.Contains(n, "CREDENTIAL_KEY") && !strings.Contains(n, "CLOUDFLARE_OAUTH") {
					t.Errorf("env %s is not the twin of a serve flag", n)
				}
			}
		}
	}

	compose := yamlDocs(t, read("deploy/compose.yaml"))[0]
	services := compose["services"].(map[string]any)
	replicas := 0
	for name, s := range services {
		s := s.(map[string]any)
		if strings.HasPrefix(name, "tollgate") {
			replicas++
			if s["read_only"] != true || s["user"] != "65532:65532" {
				t.Errorf("compose %s: want read_only and user 65532:65532, got %v %v", name, s["read_only"], s["user"])
			}
			var cmd []string
			for _, a := range s["command"].([]any) {
				cmd = append(cmd, a.(string))
			}
			checkFlags(t, "compose "+name, strings.Join(cmd, "\n"), serve)
			for k, v := range s["environment"].(map[string]any) {
				if secretish(k) && !strings.HasPrefix(v.(string), "${") {
					t.Errorf("compose %s inlines %s", name, k)
				}
			}
		}
	}
	if replicas != 2 || services["redis"] == nil || services["otel-collector"] == nil {
		t.Errorf("compose services %v: want two tollgate replicas, redis and otel-collector", keys(services))
	}
}

var flagRE = regexp.MustCompile(`--([a-z][a-z-]+)`)

// checkFlags: every --flag of a serve command line in text is a flag of
// `tollgate serve`.
func checkFlags(t *testing.T, where, text string, serve map[string]bool) {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) > 0 && (f[0] == "COPY" || f[0] == "RUN") || strings.Contains(l, "redis-server") || strings.Contains(l, "docker ") {
			continue
		}
		for _, m := range flagRE.FindAllStringSubmatch(l, -1) {
			if !serve[m[1]] {
				t.Errorf("%s passes --%s, which `tollgate serve` does not have", where, m[1])
			}
		}
	}
}

// flagsOf is the set of flags of a tollgate command.
func flagsOf(t *testing.T, name string) map[string]bool {
	t.Helper()
	cmd, _, err := newRoot().Find([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) { out[f.Name] = true })
	cmd.InheritedFlags().VisitAll(func(f *pflag.Flag) { out[f.Name] = true })
	if !out["redis-url"] || !out["metrics-addr"] {
		t.Fatalf("serve's flags %v lack redis-url or metrics-addr", out)
	}
	return out
}

func yamlDocs(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, part := range regexp.MustCompile(`(?m)^---$`).Split(s, -1) {
		var d map[string]any
		if err := yaml.Unmarshal([]byte(part), &d); err != nil {
			t.Fatal(err)
		}
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

func probePath(c map[string]any, probe string) string {
	p, _ := c[probe].(map[string]any)
	g, _ := p["httpGet"].(map[string]any)
	s, _ := g["path"].(string)
	return s
}

func secretish(name string) bool {
	n := strings.ToUpper(name)
	for _, w := range []string{"SECRET", "PASSWORD", "TOKEN", "KEY", "REDIS_URL"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
