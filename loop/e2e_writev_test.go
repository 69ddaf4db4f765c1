package loop_test

// One write to a client that takes more than one writev: its staged output
// is many separate pieces, more than the kernel takes in one call.

import (
	"strconv"
	"testing"

	"hangoutd/internal/wstest"
)

// Packets to two clients on a loop that is held back, one to each in turn,
// are staged there in one run as pieces that alternate between the two:
// each client's output is hundreds of pieces that do not touch, written at
// once. Each client gets every one of its packets, in order.
func TestE2EWriteOfManyPieces(t *testing.T) {
	srv := startServer(t, nil)
	byLoop := map[int][]*wstest.Client{}
	for i := range 4 {
		c := connect(t, srv, "c"+strconv.Itoa(i))
		id := srv.LoopIDOf(c.Token)
		byLoop[id] = append(byLoop[id], c)
	}
	if len(byLoop) != 2 || len(byLoop[0]) != 2 {
		t.Fatalf("clients not spread 2/2 over the loops: %v", byLoop)
	}
	sender, rx := byLoop[0][0], byLoop[1]
	release, err := srv.HoldLoopOf(rx[0].Token)
	if err != nil {
		t.Fatal(err)
	}
	const packets = 1400 // 700 pieces each: more than one writev of 512
	for i := range packets {
		if err := sender.Write(`{"to":"` + rx[i%2].Token + `","type":"p","data":` + strconv.Itoa(i) + `}`); err != nil {
			release()
			t.Fatalf("sender: %v", err)
		}
	}
	// The sender's loop has relayed all of them, into the held loop's
	// mailbox, once it answers the sender's own packet sent after them.
	sender.Send(`{"to":"` + sender.Token + `","type":"sync","data":0}`)
	sender.ExpectRelay(sender.Token, "sync", "0")
	release()
	for i := range packets {
		rx[i%2].ExpectRelay(sender.Token, "p", strconv.Itoa(i))
	}
}
