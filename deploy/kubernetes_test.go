// Package deploy holds no code: its tests check that the shipped deployment
// artefacts (deploy/kubernetes, deploy/seccomp, compose.yaml) keep the
// contract the design asks for. Every manifest is decoded strictly into the
// real Kubernetes API types, so a misspelt or misplaced field fails here
// instead of being silently dropped by the API server.
//
//	cd deploy && go test ./...
package deploy

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/moby/profiles/seccomp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const k8sDir = "kubernetes"

// The design's numbers. Changing one of these is a design change, not a
// tidy-up: the probes in particular were tuned after a pod was killed
// mid-session.
const (
	cdpPort     = 9222
	novncPort   = 6080
	uid         = 1000
	profileDir  = "/data"
	minGraceSec = 30
)

type probeWant struct{ period, failures int32 }

var probes = map[string]probeWant{
	"startup":   {period: 10, failures: 18},
	"liveness":  {period: 30, failures: 6},
	"readiness": {period: 10, failures: 3},
}

// kustomization is the part of kustomize's Kustomization this directory uses.
// Decoding strictly into it flags any field a reviewer did not expect here.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
		IncludeTemplates bool              `json:"includeTemplates,omitempty"`
	} `json:"labels,omitempty"`
}

// manifests is every YAML file under deploy/kubernetes, decoded strictly.
type manifests struct {
	files        []string // base names
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	policies     []*networkingv1.NetworkPolicy
	secrets      []*corev1.Secret
	kustomize    *kustomization
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in %s (err %v)", k8sDir, err)
	}
	m := &manifests{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "\n---") {
			t.Fatalf("%s: one object per file, please (kustomization lists files)", p)
		}
		var head metav1.TypeMeta
		if err := yaml.Unmarshal(data, &head); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		m.files = append(m.files, filepath.Base(p))
		strict := func(into any) {
			t.Helper()
			if err := yaml.UnmarshalStrict(data, into); err != nil {
				t.Fatalf("%s: strict decode as %s: %v", p, head.Kind, err)
			}
		}
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 StatefulSet":
			v := new(appsv1.StatefulSet)
			strict(v)
			m.statefulSets = append(m.statefulSets, v)
		case "v1 Service":
			v := new(corev1.Service)
			strict(v)
			m.services = append(m.services, v)
		case "networking.k8s.io/v1 NetworkPolicy":
			v := new(networkingv1.NetworkPolicy)
			strict(v)
			m.policies = append(m.policies, v)
		case "v1 Secret":
			v := new(corev1.Secret)
			strict(v)
			m.secrets = append(m.secrets, v)
		case "kustomize.config.k8s.io/v1beta1 Kustomization":
			v := new(kustomization)
			strict(v)
			m.kustomize = v
		default:
			t.Fatalf("%s: unexpected object %q %q; teach this test about it", p, head.APIVersion, head.Kind)
		}
	}
	if len(m.statefulSets) != 1 || len(m.services) != 1 || len(m.policies) != 1 || m.kustomize == nil {
		t.Fatalf("want one StatefulSet, Service, NetworkPolicy and kustomization.yaml; got %d, %d, %d, kustomization %v",
			len(m.statefulSets), len(m.services), len(m.policies), m.kustomize != nil)
	}
	return m
}

func scryContainer(t *testing.T, sts *appsv1.StatefulSet) *corev1.Container {
	t.Helper()
	for i := range sts.Spec.Template.Spec.Containers {
		if c := &sts.Spec.Template.Spec.Containers[i]; c.Name == "scry" {
			return c
		}
	}
	t.Fatal("StatefulSet has no container named scry")
	return nil
}

func TestStatefulSet(t *testing.T) {
	m := loadManifests(t)
	sts := m.statefulSets[0]
	pod := sts.Spec.Template.Spec
	c := scryContainer(t, sts)

	if r := sts.Spec.Replicas; r == nil || *r != 1 {
		t.Errorf("replicas = %v, want 1: one browser, one profile, one identity", r)
	}
	if sts.Spec.ServiceName != m.services[0].Name {
		t.Errorf("serviceName = %q, want the headless Service %q", sts.Spec.ServiceName, m.services[0].Name)
	}
	sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
		t.Errorf("selector %v does not match template labels %v (err %v)", sts.Spec.Selector, sts.Spec.Template.Labels, err)
	}

	t.Run("ports", func(t *testing.T) {
		want := map[string]int32{"cdp": cdpPort, "novnc": novncPort}
		got := map[string]int32{}
		for _, p := range c.Ports {
			got[p.Name] = p.ContainerPort
			if p.HostPort != 0 {
				t.Errorf("port %s has hostPort %d: never expose CDP or noVNC on the node", p.Name, p.HostPort)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("container ports = %v, want %v", got, want)
		}
	})

	t.Run("probes", func(t *testing.T) {
		for name, p := range map[string]*corev1.Probe{
			"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe,
		} {
			want := probes[name]
			if p == nil {
				t.Errorf("%s probe missing", name)
				continue
			}
			if p.TCPSocket == nil || p.TCPSocket.Port != intstr.FromString("cdp") {
				t.Errorf("%s probe: want bare TCP on the cdp port, got %+v", name, p.ProbeHandler)
			}
			if p.PeriodSeconds != want.period || p.FailureThreshold != want.failures {
				t.Errorf("%s probe: period %ds x %d failures, want %ds x %d (design; do not shrink)",
					name, p.PeriodSeconds, p.FailureThreshold, want.period, want.failures)
			}
		}
	})

	t.Run("security", func(t *testing.T) {
		psc := pod.SecurityContext
		if psc == nil {
			t.Fatal("pod securityContext missing")
		}
		for name, v := range map[string]*int64{"runAsUser": psc.RunAsUser, "runAsGroup": psc.RunAsGroup, "fsGroup": psc.FSGroup} {
			if v == nil || *v != uid {
				t.Errorf("pod %s = %v, want %d (PROFILE_DIR must be owned by it)", name, v, uid)
			}
		}
		if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Error("pod runAsNonRoot must be true")
		}
		sp := psc.SeccompProfile
		if sp == nil || sp.Type != corev1.SeccompProfileTypeLocalhost || sp.LocalhostProfile == nil {
			t.Fatalf("seccompProfile = %+v, want Localhost pointing at the shipped profile", sp)
		}
		if base := filepath.Base(*sp.LocalhostProfile); fileMissing(filepath.Join("seccomp", base)) {
			t.Errorf("localhostProfile %q does not name a profile shipped in deploy/seccomp", *sp.LocalhostProfile)
		}
		csc := c.SecurityContext
		if csc == nil {
			t.Fatal("container securityContext missing")
		}
		if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			t.Error("allowPrivilegeEscalation must be false")
		}
		if csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0 {
			t.Errorf("capabilities = %+v, want drop [ALL] and nothing added", csc.Capabilities)
		}
		if csc.Privileged != nil && *csc.Privileged {
			t.Error("container must not be privileged")
		}
		if csc.RunAsUser != nil && *csc.RunAsUser != uid {
			t.Errorf("container runAsUser %d overrides the pod's %d", *csc.RunAsUser, uid)
		}
		if pod.HostNetwork || pod.HostPID || pod.HostIPC {
			t.Error("pod must not share host namespaces")
		}
	})

	t.Run("profile volume", func(t *testing.T) {
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
		}
		if got := env["PROFILE_DIR"].Value; got != profileDir {
			t.Errorf("PROFILE_DIR = %q, want %q", got, profileDir)
		}
		var claims []string
		for _, pvc := range sts.Spec.VolumeClaimTemplates {
			claims = append(claims, pvc.Name)
		}
		mounts := map[string]string{}
		for _, vm := range c.VolumeMounts {
			mounts[vm.MountPath] = vm.Name
		}
		if name := mounts[env["PROFILE_DIR"].Value]; name != "profile" || !slices.Contains(claims, name) {
			t.Errorf("PROFILE_DIR %q is mounted from %q, want the volumeClaimTemplate \"profile\" (claims %v)",
				env["PROFILE_DIR"].Value, name, claims)
		}
		shm := mounts["/dev/shm"]
		var found bool
		for _, v := range pod.Volumes {
			if v.Name == shm && v.EmptyDir != nil && v.EmptyDir.Medium == corev1.StorageMediumMemory &&
				v.EmptyDir.SizeLimit != nil && v.EmptyDir.SizeLimit.String() == "1Gi" {
				found = true
			}
		}
		if !found {
			t.Error("/dev/shm must be a memory-backed emptyDir with sizeLimit 1Gi")
		}
		ref := env["VNC_PASSWORD"].ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "scry-vnc" || ref.SecretKeyRef.Key != "password" {
			t.Errorf("VNC_PASSWORD must come from Secret scry-vnc key password, got %+v", ref)
		}
	})

	t.Run("graceful stop", func(t *testing.T) {
		g := pod.TerminationGracePeriodSeconds
		if g == nil || *g < minGraceSec {
			t.Errorf("terminationGracePeriodSeconds = %v, want >= %d to cover scry closing Chromium", g, minGraceSec)
		}
	})
}

func TestServiceIsPrivate(t *testing.T) {
	m := loadManifests(t)
	svc := m.services[0]
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Service type = %q, want ClusterIP spelled out", svc.Spec.Type)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("clusterIP = %q, want None (headless)", svc.Spec.ClusterIP)
	}
	if len(svc.Spec.ExternalIPs) > 0 || svc.Spec.LoadBalancerIP != "" {
		t.Error("Service must not have external IPs")
	}
	got := map[int32]string{}
	for _, p := range svc.Spec.Ports {
		got[p.Port] = p.TargetPort.String()
		if p.NodePort != 0 {
			t.Errorf("port %d has nodePort %d", p.Port, p.NodePort)
		}
	}
	if want := map[int32]string{cdpPort: "cdp", novncPort: "novnc"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Service ports = %v, want %v", got, want)
	}
	tmpl := m.statefulSets[0].Spec.Template.Labels
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(tmpl)) {
		t.Errorf("Service selector %v does not select the StatefulSet pods %v", svc.Spec.Selector, tmpl)
	}
}

// TestServiceKeepsTheNameWhileNotReady: one browser per StatefulSet, dialled
// by its pod's DNS name, so a not-ready pod (Chromium slow, readiness
// failing) must keep scry-0.scry resolving; there is nowhere else to send
// the agent.
func TestServiceKeepsTheNameWhileNotReady(t *testing.T) {
	m := loadManifests(t)
	if !m.services[0].Spec.PublishNotReadyAddresses {
		t.Error("headless Service: publishNotReadyAddresses must be true, or a not-ready pod loses its DNS name scry-0.scry")
	}
}

// TestDocumentedHTTPProbes: the httpGet probes the StatefulSet's comments
// offer instead of TCP decode as real probes, keep the design's numbers,
// never point liveness at /readyz, and give /readyz a timeout above its
// 3 s budget.
func TestDocumentedHTTPProbes(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(k8sDir, "statefulset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		l := strings.TrimSpace(line)
		if !strings.HasPrefix(l, "#") {
			continue
		}
		l = strings.TrimSpace(strings.TrimPrefix(l, "#"))
		name, snippet, ok := strings.Cut(l, "Probe:")
		if !ok || !strings.Contains(snippet, "httpGet") {
			continue
		}
		var p corev1.Probe
		if err := yaml.UnmarshalStrict([]byte(snippet), &p); err != nil {
			t.Errorf("documented %sProbe %q: %v", name, snippet, err)
			continue
		}
		found[name] = true
		want, ok := probes[name]
		if !ok {
			t.Errorf("documented probe %q is not one of the design's", name)
			continue
		}
		if p.HTTPGet == nil || p.HTTPGet.Port != intstr.FromString("cdp") {
			t.Errorf("documented %sProbe: want httpGet on the cdp port, got %+v", name, p.ProbeHandler)
			continue
		}
		if p.PeriodSeconds != want.period || p.FailureThreshold != want.failures {
			t.Errorf("documented %sProbe: %ds x %d, want the design's %ds x %d", name, p.PeriodSeconds, p.FailureThreshold, want.period, want.failures)
		}
		switch path := p.HTTPGet.Path; {
		case name == "liveness" && path != "/healthz":
			t.Errorf("documented livenessProbe on %s: liveness must be /healthz, never /readyz or /json/version", path)
		case path == "/readyz" && p.TimeoutSeconds < 4:
			t.Errorf("documented %sProbe on /readyz: timeoutSeconds %d, want > 3 (scry's readiness budget is 3 s; the default is 1)", name, p.TimeoutSeconds)
		}
	}
	for _, name := range []string{"liveness", "readiness"} {
		if !found[name] {
			t.Errorf("statefulset.yaml documents no httpGet %sProbe", name)
		}
	}
}

// TestCDPTokenBlocks: the commented [cdp-token] lines of statefulset.yaml,
// uncommented, are a valid StatefulSet whose CDP_TOKEN_FILE lies in a
// read-only mount of the Secret scry-cdp-token that uid 1000 can read.
func TestCDPTokenBlocks(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(k8sDir, "statefulset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	uncommented := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasSuffix(line, "# [cdp-token]") {
			// "<indent># key: value  # [cdp-token]" -> "<indent>key: value  # [cdp-token]"
			body := strings.TrimLeft(line, " ")
			line = line[:len(line)-len(body)] + strings.TrimPrefix(body, "# ")
			uncommented++
		}
		lines = append(lines, line)
	}
	if uncommented < 9 {
		t.Fatalf("statefulset.yaml has %d [cdp-token] lines, want the env, volumeMount and volume blocks (9+)", uncommented)
	}
	var sts appsv1.StatefulSet
	if err := yaml.UnmarshalStrict([]byte(strings.Join(lines, "\n")), &sts); err != nil {
		t.Fatalf("statefulset.yaml with the [cdp-token] blocks uncommented: %v", err)
	}
	pod := sts.Spec.Template.Spec
	c := pod.Containers[0]
	var file string
	for _, e := range c.Env {
		if e.Name == "CDP_TOKEN_FILE" {
			file = e.Value
		}
	}
	if file == "" {
		t.Fatal("uncommented: no CDP_TOKEN_FILE in the container's env")
	}
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil || !mount.ReadOnly {
		t.Fatalf("uncommented: CDP_TOKEN_FILE=%s is not in a read-only volume mount (%+v)", file, c.VolumeMounts)
	}
	for _, v := range pod.Volumes {
		if v.Name != mount.Name {
			continue
		}
		if v.Secret == nil || v.Secret.SecretName != "scry-cdp-token" || (v.Secret.Optional != nil && *v.Secret.Optional) {
			t.Errorf("uncommented: volume %s is %+v, want the required Secret scry-cdp-token (fail closed)", v.Name, v.VolumeSource)
		}
		if m := v.Secret.DefaultMode; m == nil || *m&0o040 == 0 || *m&0o007 != 0 {
			t.Errorf("uncommented: secret mode %v, want group-readable (fsGroup %v) and nothing for others", m, pod.SecurityContext.FSGroup)
		}
		return
	}
	t.Errorf("uncommented: no volume named %s", mount.Name)
}

// TestNetworkPolicyScraperRule: the commented rule for Prometheus, once
// uncommented, is a valid policy that admits those pods to the cdp port
// only, with both selectors in one peer (namespace AND pods).
func TestNetworkPolicyScraperRule(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(k8sDir, "networkpolicy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	uncommented := 0
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "    # - from:") {
			in = true
		}
		if in && strings.HasPrefix(line, "    # ") {
			line = "    " + strings.TrimPrefix(line, "    # ")
			uncommented++
		} else {
			in = false
		}
		lines = append(lines, line)
	}
	if uncommented == 0 {
		t.Fatal("networkpolicy.yaml has no commented scraper rule (a line \"    # - from:\")")
	}
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict([]byte(strings.Join(lines, "\n")), &np); err != nil {
		t.Fatalf("the scraper rule uncommented: %v", err)
	}
	m := loadManifests(t)
	if got, want := len(np.Spec.Ingress), len(m.policies[0].Spec.Ingress)+1; got != want {
		t.Fatalf("uncommented: %d ingress rules, want %d", got, want)
	}
	rule := np.Spec.Ingress[len(np.Spec.Ingress)-1]
	if len(rule.From) != 1 || rule.From[0].NamespaceSelector == nil || rule.From[0].PodSelector == nil ||
		len(rule.From[0].PodSelector.MatchLabels) == 0 || rule.From[0].IPBlock != nil {
		t.Errorf("scraper rule: want one peer with a namespaceSelector and a podSelector, got %+v", rule.From)
	}
	if len(rule.Ports) != 1 || rule.Ports[0].Port == nil || rule.Ports[0].Port.String() != "cdp" {
		t.Errorf("scraper rule: want the cdp port only, got %+v", rule.Ports)
	}
}

// TestNothingPublic scans the raw files too, so a LoadBalancer hidden in a
// kind this test does not decode still fails.
func TestNothingPublic(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(data, &obj); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		walk(obj, func(key string, v any) {
			s, _ := v.(string)
			switch {
			case key == "type" && (s == "LoadBalancer" || s == "NodePort"):
				t.Errorf("%s: type %s: CDP and noVNC must never be reachable from outside the cluster", p, s)
			case key == "kind" && (s == "Ingress" || s == "Gateway" || s == "HTTPRoute"):
				t.Errorf("%s: %s: never route CDP or noVNC from outside", p, s)
			case key == "hostPort" || key == "nodePort" || key == "hostNetwork" && v == true:
				t.Errorf("%s: %s set", p, key)
			}
		})
	}
}

func walk(v any, f func(key string, v any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			f(k, x)
			walk(x, f)
		}
	case []any:
		for _, x := range v {
			walk(x, f)
		}
	}
}

func TestNetworkPolicy(t *testing.T) {
	m := loadManifests(t)
	np := m.policies[0]
	tmpl := labels.Set(m.statefulSets[0].Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || sel.Empty() || !sel.Matches(tmpl) {
		t.Fatalf("podSelector %v does not select the StatefulSet pods %v (err %v)", np.Spec.PodSelector, tmpl, err)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Error("policyTypes must include Ingress so everything not listed is denied")
	}
	want := map[string]string{
		"cdp":   "scry.dataplanelabs.io/cdp-client",
		"novnc": "scry.dataplanelabs.io/novnc-client",
	}
	got := map[string]string{}
	for i, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 || len(rule.Ports) == 0 {
			t.Errorf("ingress rule %d allows every source or every port", i)
			continue
		}
		for _, peer := range rule.From {
			if peer.IPBlock != nil || peer.NamespaceSelector != nil || peer.PodSelector == nil ||
				len(peer.PodSelector.MatchLabels) != 1 {
				t.Errorf("ingress rule %d: want exactly one client label per peer, got %+v", i, peer)
				continue
			}
			for _, p := range rule.Ports {
				for k, v := range peer.PodSelector.MatchLabels {
					if v != "true" {
						t.Errorf("rule %d: label %s=%q, want \"true\"", i, k, v)
					}
					got[p.Port.String()] = k
				}
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ingress allows %v, want %v", got, want)
	}
}

func TestSecretExample(t *testing.T) {
	m := loadManifests(t)
	if len(m.secrets) != 1 {
		t.Fatalf("want one example Secret, got %d", len(m.secrets))
	}
	s := m.secrets[0]
	if _, ok := s.StringData["password"]; s.Name != "scry-vnc" || !ok {
		t.Errorf("example Secret must be scry-vnc with key password, got %s %v", s.Name, s.StringData)
	}
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	m := loadManifests(t)
	var want []string
	for _, f := range m.files {
		// The example Secret is left out on purpose (see kustomization.yaml).
		if f != "kustomization.yaml" && !strings.HasSuffix(f, ".example.yaml") {
			want = append(want, f)
		}
	}
	got := slices.Clone(m.kustomize.Resources)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources = %v, want every manifest: %v", got, want)
	}
	for _, l := range m.kustomize.Labels {
		if l.IncludeSelectors {
			t.Error("kustomization labels must not change selectors (StatefulSet selectors are immutable)")
		}
	}
	// With a kustomize at hand, prove it really builds.
	for _, cmd := range [][]string{{"kustomize", "build", k8sDir}, {"kubectl", "kustomize", k8sDir}} {
		if _, err := exec.LookPath(cmd[0]); err != nil {
			continue
		}
		out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
		return
	}
	t.Log("no kustomize or kubectl on PATH; build not exercised")
}

// TestSeccompProfile checks that scry.json is moby's default profile plus
// only the rules marked "scry:", and that those rules are the narrow ones.
func TestSeccompProfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("seccomp", "scry.json"))
	if err != nil {
		t.Fatal(err)
	}
	var prof seccomp.Seccomp
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&prof); err != nil {
		t.Fatalf("scry.json: %v", err)
	}
	var base []*seccomp.Syscall
	added := map[string]*seccomp.Syscall{}
	for _, s := range prof.Syscalls {
		if strings.HasPrefix(s.Comment, "scry:") {
			key := strings.Join(s.Names, ",")
			if s.Includes != nil && len(s.Includes.Arches) > 0 {
				key += "/" + strings.Join(s.Includes.Arches, ",")
			}
			added[key] = s
			continue
		}
		base = append(base, s)
	}
	prof.Syscalls = base
	def := seccomp.DefaultProfile()
	if !reflect.DeepEqual(roundTrip(t, &prof), roundTrip(t, def)) {
		t.Error("scry.json without its scry: rules differs from github.com/moby/profiles/seccomp's default profile; regenerate it (see deploy/seccomp/README.md)")
	}

	const nsAllowed = 0x10000000 | 0x20000000 | 0x40000000 // CLONE_NEWUSER|NEWPID|NEWNET
	const nsAll = 0x7E020000                               // every CLONE_NEW* bit clone takes
	type want struct {
		index uint
		mask  uint64
	}
	for key, w := range map[string]want{
		"clone":            {0, nsAll &^ nsAllowed},
		"clone/s390,s390x": {1, nsAll &^ nsAllowed},
		"unshare":          {0, 0xFFFFFFFF &^ 0x10000000},
		"chroot":           {},
	} {
		s, ok := added[key]
		if !ok {
			t.Errorf("missing scry rule %q", key)
			continue
		}
		delete(added, key)
		if s.Action != "SCMP_ACT_ALLOW" {
			t.Errorf("%s: action %s", key, s.Action)
		}
		if key == "chroot" {
			if len(s.Args) != 0 || s.Excludes == nil || !slices.Equal(s.Excludes.Caps, []string{"CAP_SYS_CHROOT"}) {
				t.Errorf("chroot rule: want no args and excludes CAP_SYS_CHROOT, got %+v", s)
			}
			continue
		}
		if len(s.Args) != 1 || s.Args[0].Index != w.index || s.Args[0].Value != w.mask ||
			s.Args[0].ValueTwo != 0 || s.Args[0].Op != "SCMP_CMP_MASKED_EQ" {
			t.Errorf("%s: args %+v, want arg %d & %#x == 0", key, s.Args, w.index, w.mask)
		}
	}
	for key := range added {
		t.Errorf("unexpected extra scry rule %q: the profile must add only what the sandbox needs", key)
	}
}

func roundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCompose keeps compose.yaml in line: loopback-only ports, the seccomp
// profile, shm and the profile volume.
func TestCompose(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "compose.yaml"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("no compose.yaml")
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `json:"image"`
			Build       any               `json:"build"`
			Init        bool              `json:"init"`
			Ports       []string          `json:"ports"`
			ShmSize     string            `json:"shm_size"`
			Environment map[string]string `json:"environment"`
			Volumes     []string          `json:"volumes"`
			SecurityOpt []string          `json:"security_opt"`
			CapDrop     []string          `json:"cap_drop"`
			StopGrace   string            `json:"stop_grace_period"`
			Restart     string            `json:"restart"`
			ReadOnly    bool              `json:"read_only"`
			Tmpfs       []string          `json:"tmpfs"`
		} `json:"services"`
		Volumes map[string]any `json:"volumes"`
	}
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		t.Fatalf("compose.yaml (strict, fields this test knows): %v", err)
	}
	svc, ok := doc.Services["scry"]
	if !ok {
		t.Fatal("compose.yaml has no service scry")
	}
	if len(svc.Ports) != 2 {
		t.Errorf("ports = %v, want CDP and noVNC", svc.Ports)
	}
	for _, p := range svc.Ports {
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("port %q: bind to 127.0.0.1 only", p)
		}
	}
	if svc.ShmSize != "1g" && svc.ShmSize != "1gb" {
		t.Errorf("shm_size = %q, want 1g", svc.ShmSize)
	}
	var seccompOK bool
	for _, o := range svc.SecurityOpt {
		if f, ok := strings.CutPrefix(o, "seccomp="); ok && !fileMissing(filepath.Join("..", f)) {
			seccompOK = true
		}
	}
	if !seccompOK {
		t.Errorf("security_opt %v must point seccomp= at the shipped profile", svc.SecurityOpt)
	}
	var volOK bool
	for _, v := range svc.Volumes {
		name, dir, _ := strings.Cut(v, ":")
		if dir == profileDir && doc.Volumes != nil {
			_, volOK = doc.Volumes[name]
		}
	}
	if !volOK {
		t.Errorf("volumes %v: want a named volume at %s", svc.Volumes, profileDir)
	}
	if _, ok := svc.Environment["VNC_PASSWORD"]; !ok {
		t.Error("VNC_PASSWORD must be passed from the environment")
	}
	if !svc.ReadOnly || !slices.Contains(svc.Tmpfs, "/tmp") {
		t.Errorf("read_only %v, tmpfs %v: want a read-only root with a tmpfs /tmp", svc.ReadOnly, svc.Tmpfs)
	}
}

func fileMissing(path string) bool {
	_, err := os.Stat(path)
	return err != nil
}

// TestDockerfile ties the image to the manifests: the same uid, profile
// directory and ports, with tini in front of scry.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines so each instruction is one line.
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	var lines []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	joined := strings.Join(lines, "\n")
	for _, want := range []string{
		"USER 1000:1000",
		"EXPOSE 9222 6080",
		"VOLUME /data",
		`ENTRYPOINT ["tini", "--", "scry"]`,
		"PROFILE_DIR=" + profileDir,
		"CGO_ENABLED=0 go build -trimpath",
		"--no-install-recommends",
		"rm -rf /var/lib/apt/lists/*",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if !strings.Contains(joined, "install -d -o 1000 -g 1000") {
		t.Error("Dockerfile must create /data owned by 1000")
	}
	// Under a read-only root /tmp is a tmpfs or emptyDir; podman copies an
	// image's /tmp into its tmpfs with the wrong mode (1755), and Xvfb then
	// cannot listen. scry makes /tmp/.X11-unix itself.
	if strings.Contains(joined, "/tmp/.X11-unix") {
		t.Error("Dockerfile must leave /tmp empty: scry creates /tmp/.X11-unix with mode 1777 itself")
	}
	for _, line := range lines {
		if strings.HasPrefix(line, "ENV ") && strings.Contains(line, "HOME=") && !strings.Contains(line, "HOME=/tmp/") {
			t.Errorf("HOME must be under /tmp so the image runs with a read-only root: %s", line)
		}
	}
	// Size: what a logged-in browser never reads stays out (docs/deployment.md).
	for _, want := range []string{"path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/locale/*",
		"path-exclude=/usr/share/man/*", "fonts-noto-cjk", "fonts-noto-color-emoji"} {
		if !strings.Contains(joined, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// TestReadOnlyRoot: the pod runs with a read-only root filesystem and gets
// exactly the writable places scry needs: /data, /tmp and /dev/shm.
func TestReadOnlyRoot(t *testing.T) {
	m := loadManifests(t)
	sts := m.statefulSets[0]
	c := scryContainer(t, sts)
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("container securityContext.readOnlyRootFilesystem must be true")
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm
	}
	vols := map[string]corev1.Volume{}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	tmp, ok := mounts["/tmp"]
	if !ok || tmp.ReadOnly || tmp.SubPath != "" {
		t.Fatalf("/tmp must be a writable volume mount (got %+v)", tmp)
	}
	if v := vols[tmp.Name]; v.EmptyDir == nil {
		t.Errorf("/tmp must be an emptyDir (empty at every start), got %+v", v.VolumeSource)
	}
	for _, p := range []string{"/data", "/dev/shm"} {
		if vm, ok := mounts[p]; !ok || vm.ReadOnly {
			t.Errorf("%s must be a writable mount", p)
		}
	}
}

// TestImageNamesAVersion: with imagePullPolicy IfNotPresent, ":latest" (or
// no tag) means whatever a node pulled first; name a version or a digest.
func TestImageNamesAVersion(t *testing.T) {
	m := loadManifests(t)
	c := scryContainer(t, m.statefulSets[0])
	ref := c.Image
	if _, digest, ok := strings.Cut(ref, "@"); ok {
		if !strings.HasPrefix(digest, "sha256:") {
			t.Errorf("image %q: want @sha256:<digest>", ref)
		}
		return
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	if !ok || tag == "" || tag == "latest" {
		t.Errorf("image %q: name a version tag or a digest, not :latest or no tag", ref)
	}
	if c.ImagePullPolicy != corev1.PullIfNotPresent && c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("imagePullPolicy %q: want IfNotPresent (with a version) or Always", c.ImagePullPolicy)
	}
}
