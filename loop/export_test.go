package loop

import (
	"context"
	"fmt"
	"sync"

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

// SetVerifyQueue bounds the tokens waiting for a verifier to n.
func SetVerifyQueue(cfg *Config, n int) { cfg.verifyQueue = n }

// HoldVerifiers makes every verifier stop before its next token until
// release is called (or the server shuts down). Each token a verifier
// takes and holds sends on taken.
func (s *Server) HoldVerifiers() (taken <-chan struct{}, release func()) {
	p := s.verifiers
	ch, free := make(chan struct{}, 1024), make(chan struct{})
	hold := func() {
		ch <- struct{}{}
		select {
		case <-free:
		case <-p.stop:
		}
	}
	p.hold.Store(&hold)
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			p.hold.Store(nil)
			close(free)
		})
	}
}

// VerifiersAlive is how many verifiers are running.
func (s *Server) VerifiersAlive() int { return int(s.verifiers.alive.Load()) }

// VerifyQueued is how many tokens wait for a verifier.
func (s *Server) VerifyQueued() int { return len(s.verifiers.queue) }
