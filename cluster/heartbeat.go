package cluster

import "github.com/goccy/go-json"

// heartbeat is what a node says of itself about every HeartbeatEvery on
// PREFIX.hb, on a subscription of its own so that a backlog of records
// never makes a live node look dead.
type heartbeat struct {
	Node  string `json:"node"`
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`             // its last presence record's number
	Users int    `json:"users"`           // its users as of Seq
	Hello bool   `json:"hello,omitempty"` // it just connected: every node answers with a heartbeat at once
	Bye   bool   `json:"bye,omitempty"`   // it is stopping: its users are closed at once
}

func (h heartbeat) encode() []byte {
	b, _ := json.Marshal(h) // a struct of plain fields cannot fail
	return b
}

func decodeHeartbeat(b []byte) (heartbeat, bool) {
	var h heartbeat
	if json.Unmarshal(b, &h) != nil || h.Node == "" || h.Epoch == 0 {
		return heartbeat{}, false
	}
	return h, true
}
