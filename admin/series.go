package admin

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"hangoutd/loop"
)

// family is one metric the server's counters are reported under.
type family struct {
	desc   *prometheus.Desc
	kind   prometheus.ValueType
	labels []string // names, to check that every series of the family agrees
}

// series is one tagged field of loop.Totals.
type series struct {
	family int
	field  []int    // reflect's index of the field
	labels []string // label values; at keyAt the field's key goes
	keyAt  int      // -1: one series; else one per key of the field's Each
}

// keyed is a field that reports one series per key.
type keyed interface {
	Each(f func(key string, n uint64))
}

// table is every family and series loop.Totals's tags declare, read once
// at start-up: a tag that cannot be read stops the process at once, not at
// the first scrape.
var table = mustReadTags(reflect.TypeFor[loop.Totals]())

type metricTable struct {
	families []family
	series   []series
}

// mustReadTags reads the metric and help tags of t's fields, embedded
// ones' included (their syntax is described on loop's counters).
func mustReadTags(t reflect.Type) metricTable {
	var tb metricTable
	byName := map[string]int{}
	helps := map[string]string{}
	for _, f := range reflect.VisibleFields(t) {
		tag, ok := f.Tag.Lookup("metric")
		if !ok || f.Anonymous {
			continue
		}
		name, names, values, err := parseSeries(tag)
		if err != nil {
			panic(fmt.Sprintf("admin: %s.%s: %v", t, f.Name, err))
		}
		fi, seen := byName[name]
		if !seen {
			fi = len(tb.families)
			byName[name] = fi
			tb.families = append(tb.families, family{labels: names})
		} else if !slices.Equal(tb.families[fi].labels, names) {
			panic(fmt.Sprintf("admin: %s.%s: labels %v, but %s has %v", t, f.Name, names, name, tb.families[fi].labels))
		}
		if help, ok := f.Tag.Lookup("help"); ok {
			if helps[name] != "" {
				panic(fmt.Sprintf("admin: %s.%s: a second help for %s", t, f.Name, name))
			}
			helps[name] = help
		}
		s := series{family: fi, field: f.Index, labels: values, keyAt: slices.Index(values, "")}
		if err := checkKind(f.Type, s.keyAt >= 0); err != nil {
			panic(fmt.Sprintf("admin: %s.%s: %v", t, f.Name, err))
		}
		tb.series = append(tb.series, s)
	}
	for name, fi := range byName {
		if helps[name] == "" {
			panic(fmt.Sprintf("admin: %s: no help for %s", t, name))
		}
		fam := &tb.families[fi]
		fam.desc = prometheus.NewDesc("hangoutd_"+name, helps[name], fam.labels, nil)
		// Prometheus's naming rule: an accumulating count ends in _total.
		fam.kind = prometheus.GaugeValue
		if strings.HasSuffix(name, "_total") {
			fam.kind = prometheus.CounterValue
		}
	}
	return tb
}

// parseSeries reads "family{label=value,...}"; a label without a value
// has "" for one.
func parseSeries(tag string) (name string, labels, values []string, err error) {
	name, rest, hasLabels := strings.Cut(tag, "{")
	if name == "" {
		return "", nil, nil, fmt.Errorf("no metric name in %q", tag)
	}
	if !hasLabels {
		return name, nil, nil, nil
	}
	rest, ok := strings.CutSuffix(rest, "}")
	if !ok || rest == "" {
		return "", nil, nil, fmt.Errorf("bad labels in %q", tag)
	}
	keys := 0
	for _, kv := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return "", nil, nil, fmt.Errorf("bad label in %q", tag)
		}
		if v == "" {
			keys++
		}
		labels, values = append(labels, k), append(values, v)
	}
	if keys > 1 {
		return "", nil, nil, fmt.Errorf("more than one label without a value in %q", tag)
	}
	return name, labels, values, nil
}

// checkKind makes sure a field can be read as its tag says: a number, or
// for a label without a value, a keyed count.
func checkKind(t reflect.Type, isKeyed bool) error {
	if isKeyed {
		if !t.Implements(reflect.TypeFor[keyed]()) {
			return fmt.Errorf("a label without a value, but %s has no Each", t)
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return nil
	}
	return fmt.Errorf("%s is not a count", t)
}

// value reads a field checkKind accepted as a number.
func value(v reflect.Value) float64 {
	if v.CanInt() {
		return float64(v.Int())
	}
	return float64(v.Uint())
}
