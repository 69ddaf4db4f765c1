package loop_test

// A receiver gets a packet at most once however often it is named
// (protocol-v2.md, "Relaying"), in a "to" list of any length.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"hangoutd/internal/wstest"
)

// unknownToken has a token's form and names nobody.
const unknownToken = "00000000000000000000000000000000"

// toList is names as a JSON array.
func toList(names []string) string {
	return `["` + strings.Join(names, `","`) + `"]`
}

// Lists of every length from 1 to 40 names, repeats and unknown tokens
// among them, and lists naming 17 and 20 distinct clients with repeats:
// each receiver gets one copy, and only the named receive. A server may
// deduplicate a short list differently from a long one (a scan, a set);
// lengths on both sides of any such threshold are covered. Receivers are
// on both loops, so deliveries cross loops too.
func TestE2ERelayDedupAnyListLength(t *testing.T) {
	srv := startServer(t, nil)
	const crowd = 20
	cs := make([]*wstest.Client, crowd)
	for i := range cs {
		cs[i] = connect(t, srv, "C"+strconv.Itoa(i))
	}
	a, b, c := cs[0], cs[1], cs[2]
	tokens := wstest.Tokens(cs...)

	type tcase struct {
		name  string
		names []string
	}
	var cases []tcase
	cycle := []string{b.Token, a.Token, b.Token, unknownToken, c.Token, a.Token, c.Token}
	for n := 1; n <= 40; n++ {
		names := make([]string, n)
		for i := range names {
			names[i] = cycle[i%len(cycle)]
		}
		cases = append(cases, tcase{fmt.Sprintf("%d names, 3 receivers", n), names})
	}
	var twice []string
	for i := range 2 * crowd {
		twice = append(twice, tokens[(i*7)%crowd]) // every client twice, in a scrambled order
		if i%10 == 0 {
			twice = append(twice, unknownToken)
		}
	}
	cases = append(cases, tcase{"every client twice", twice})
	cases = append(cases, tcase{"17 distinct, then repeats", append(append([]string{}, tokens[3:]...), tokens[3], tokens[19], tokens[3])})

	// Every packet first, then each client reads them all: packets from
	// one sender arrive in order, so a duplicate would come before the
	// sync that follows its case.
	for i, tc := range cases {
		a.Send(`{"to":` + toList(tc.names) + `,"type":"case","data":` + strconv.Itoa(i) + `}`)
		a.Send(`{"to":"*","type":"sync","data":` + strconv.Itoa(i) + `}`)
	}
	for _, x := range cs {
		for i, tc := range cases {
			d := strconv.Itoa(i)
			for _, name := range tc.names {
				if name == x.Token {
					if p := x.NextOther(); p.From != a.Token || p.Type != "case" || string(p.Data) != d {
						t.Fatalf("%s, named in case %q: got %.200s, want the case packet %s", x.Name, tc.name, p, d)
					}
					break
				}
			}
			if p := x.NextOther(); p.From != a.Token || p.Type != "sync" || string(p.Data) != d {
				t.Fatalf("%s, case %q: got %.200s, want sync %s (a second copy, or a packet it was not named in?)", x.Name, tc.name, p, d)
			}
		}
	}
}
