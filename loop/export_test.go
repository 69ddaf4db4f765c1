package loop

import (
	"context"
	"fmt"

	"github.com/panjf2000/gnet/v2"
)

// Hooks for the end-to-end tests (package loop_test), which otherwise speak
// to the server only over sockets. They make a loop fall behind on purpose
// and name which loop a client is on; nothing here changes what the server
// does with what it receives.

// loopOfToken is the loop serving the user with token tok.
func (s *Server) loopOfToken(tok string) (*eventLoop, error) {
	c, ok := s.table.Get([]byte(tok))
	if !ok {
		return nil, fmt.Errorf("no user %s", tok)
	}
	return c.loop, nil // immutable once published
}

// LoopIDOf is the id of the loop serving tok, -1 if tok is unknown.
func (s *Server) LoopIDOf(tok string) int {
	l, err := s.loopOfToken(tok)
	if err != nil {
		return -1
	}
	return l.id
}

// HoldLoopOf blocks the loop serving tok, as a loop busy with its own
// clients would be, until release is called. It returns once the loop is
// held.
func (s *Server) HoldLoopOf(tok string) (release func(), err error) {
	l, err := s.loopOfToken(tok)
	if err != nil {
		return nil, err
	}
	held, free := make(chan struct{}), make(chan struct{})
	err = l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		close(held)
		<-free
		return nil
	}))
	if err != nil {
		return nil, err
	}
	<-held
	return func() { close(free) }, nil
}

// PostSweeps queues n sweeps on the loop serving tok, as ticks that pile
// up behind a busy loop do.
func (s *Server) PostSweeps(tok string, n int) error {
	l, err := s.loopOfToken(tok)
	if err != nil {
		return err
	}
	for range n {
		l.post(newJob(jobSweep))
	}
	return nil
}
