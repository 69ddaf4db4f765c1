package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

func TestCLIWritesTableJSONAndPlot(t *testing.T) {
	url := startServer(t, nil)
	dir := t.TempDir()
	jf, pf := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.png")
	// Long enough for a whole second of traffic: the plot leaves out the
	// second that also holds the connecting.
	code, out, errs := runCLI("broadcast", "-url", url, "-n", "30", "-senders", "3", "-duration", "2500ms",
		"-warmup", "200ms", "-json", jf, "-plot", pf)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	for _, want := range []string{"== broadcast", "deliveries_per_s", "latency_p99.9_ms", "result: ok"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(jf)
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Scenario != "broadcast" || !res.OK || len(res.Series) == 0 || len(res.Phases) != 3 {
		t.Fatalf("json: scenario %q ok %v series %d phases %v", res.Scenario, res.OK, len(res.Series), res.Phases)
	}
	if v, ok := res.Get("received"); !ok || v == 0 {
		t.Fatalf("json received %v %v", v, ok)
	}
	png, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 5000 {
		t.Fatalf("plot is not a PNG (%d bytes)", len(png))
	}
}

// A run shorter than a second has no sample to draw: it says so and its
// result stands, rather than failing after "result: ok".
func TestCLIShortRunWithPlotExits0(t *testing.T) {
	url := startServer(t, nil)
	pf := filepath.Join(t.TempDir(), "r.png")
	code, out, errs := runCLI("connect", "-url", url, "-n", "3", "-plot", pf)
	if code != 0 || !strings.Contains(out, "result: ok") || !strings.Contains(errs, "r.png not written") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if _, err := os.Stat(pf); !os.IsNotExist(err) {
		t.Fatalf("plot file: %v", err)
	}
}

func TestCLIMisbehavingServerExits2(t *testing.T) {
	url := fakeServer(t, nil2close)
	code, _, errs := runCLI("connect", "-url", url, "-n", "3")
	if code != 2 || !strings.Contains(errs, "misbehaved") || !strings.Contains(errs, "no welcome") {
		t.Fatalf("exit %d stderr %q", code, errs)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"nonsense"},
		{"connect", "-n", "0"},
		{"connect", "-url", "http://x/"},
		{"churn", "-rate", "0"},
		{"connect", "extra"},
		{"connect", "-rooms", "0"},
		{"connect", "-n", "3", "-rooms", "4"},
		{"unicast", "-n", "5", "-rooms", "3"},     // a room of one has no one to send to
		{"failover", "-url", "ws://127.0.0.1:1/"}, // whom to kill?
		{"broadcast", "-n", "4", "-procs", "2"},   // only connect and idle run across processes
		{"connect", "-n", "2", "-procs", "3"},     // more processes than clients
		{"connect", "-url", "ws://127.0.0.1:1/a,ws://127.0.0.1:2/b"}, // two paths: not the nodes of one cluster
		{"abuse", "-url", "ws://127.0.0.1:1/,ws://127.0.0.1:2/"},     // abuse drives one server
		{"connect", "-pid", "12,x"},
		{"standard", "-server-bin", "x", "-scale", "0"},
		{"standard", "-server-bin", "x", "-only", "presence-5000,presence-50"},
	} {
		if code, _, _ := runCLI(args...); code != 1 {
			t.Errorf("%q: exit %d, want 1", args, code)
		}
	}
	if code, _, errs := runCLI("-h"); code != 0 || !strings.Contains(errs, "scenarios:") {
		t.Errorf("-h: exit %d %q", code, errs)
	}
}
