package state

// Limits bound one user's properties. A zero or negative field takes its
// default.
type Limits struct {
	MaxKeys     int // keys per user; default 64
	MaxKeyBytes int // bytes per key (after JSON unescaping); default 128
	MaxBytes    int // the user's whole properties as a compact JSON object; default 16384
}

func (l Limits) withDefaults() Limits {
	if l.MaxKeys <= 0 {
		l.MaxKeys = 64
	}
	if l.MaxKeyBytes <= 0 {
		l.MaxKeyBytes = 128
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 16384
	}
	return l
}

// Unlimited is for properties another server already held to its limits:
// a user of another node of a cluster, whose node accepted each change.
// Refusing one here would leave this server's view of the user wrong for
// good, so only the JSON is checked.
var Unlimited = Limits{MaxKeys: 1 << 30, MaxKeyBytes: 1 << 30, MaxBytes: 1 << 30}
