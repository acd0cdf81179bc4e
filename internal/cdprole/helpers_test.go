package cdprole

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

func jsonUnmarshalExact(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// protocolMethods reads testdata/protocol-methods.txt
// (scripts/protocol-methods.sh).
func protocolMethods(t testing.TB) map[string]bool {
	t.Helper()
	f, err := os.Open("testdata/protocol-methods.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m[sc.Text()] = true
	}
	if len(m) < 300 {
		t.Fatalf("testdata/protocol-methods.txt has %d methods: regenerate it with scripts/protocol-methods.sh", len(m))
	}
	return m
}
