package cluster

// maxMessage is the most record bytes put in one NATS message, well under
// the broker's default max_payload of 1 MiB (a record is at most a 64 KiB
// client message and its envelope, so one always fits).
const maxMessage = 256 << 10

// publisher is the one goroutine that calls into nats.go to publish:
// nc.Publish may block on a slow socket, which no event loop may. It takes
// the outbox whole and publishes it in order, consecutive records for the
// same destination in one message, so a burst of joins or relays costs a
// few messages, not one each, and one sender's records reach every
// receiver in the order the loops queued them.
func (n *Node) publisher() {
	defer n.wg.Done()
	defer close(n.published)
	var buf []byte
	msg := make([]byte, 0, 64<<10)
	subjects := map[string]string{"": n.subjAll}
	for {
		select {
		case <-n.out.wake:
		case <-n.stop:
			buf = n.out.take(buf) // what the server's shutdown queued last
			n.send(buf, msg, subjects)
			return
		}
		buf = n.out.take(buf)
		msg = n.send(buf, msg, subjects)
	}
}

// send publishes the outbox records in buf; msg is scratch, returned for
// reuse.
func (n *Node) send(buf, msg []byte, subjects map[string]string) []byte {
	r := reader{b: buf}
	subject, records := "", 0
	flush := func() {
		if records == 0 {
			return
		}
		if err := n.nc.Publish(subject, msg); err != nil {
			n.pubFailed.Add(uint64(records))
		}
		records = 0
	}
	for len(r.b) > 0 {
		dest := r.bytes()
		start := len(buf) - len(r.b)
		kind, _ := r.record()
		if r.err != nil {
			break // cannot happen: the outbox wrote these
		}
		rec := buf[start : len(buf)-len(r.b)]
		if records > 0 && (subjects[string(dest)] != subject || len(msg)+len(rec) > maxMessage) {
			flush()
		}
		if records == 0 {
			s, ok := subjects[string(dest)]
			if !ok {
				s = n.cfg.Prefix + ".to." + string(dest)
				if len(subjects) > 4096 {
					clear(subjects) // nodes come and go; keep the cache small
					subjects[""] = n.subjAll
				}
				subjects[string(dest)] = s
			}
			subject = s
			msg = appendHead(msg[:0], n.epoch, n.cfg.Node)
		}
		msg = append(msg, rec...)
		records++
		if kind == kindBroadcast || kind == kindUnicast {
			n.relaysOut.Add(1)
		}
	}
	flush()
	return msg
}
