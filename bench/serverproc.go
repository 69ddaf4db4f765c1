package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serverProc is a process `bench standard` started: a hangoutd server or
// node, or a nats-server. Its log (stderr) is read to the end, so it never
// blocks on a full pipe; the first lines are kept to find what waitLog
// asks for, and the last ones to say why it died.
type serverProc struct {
	name string
	cmd  *exec.Cmd

	exited  chan struct{} // closed once the process has exited and been reaped
	waitErr error         // the exit, once exited is closed

	mu     sync.Mutex
	head   []string      // the first headLines lines
	tail   []string      // the last tailLines lines
	notify chan struct{} // a line came (capacity 1)
}

const (
	headLines = 500
	tailLines = 10
)

// startProc starts bin with args; name is how reports call it.
func startProc(name, bin string, args ...string) (*serverProc, error) {
	p := &serverProc{name: name, cmd: exec.Command(bin, args...), exited: make(chan struct{}), notify: make(chan struct{}, 1)}
	p.cmd.Stdout = io.Discard
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			if len(p.head) < headLines {
				p.head = append(p.head, sc.Text())
			}
			if p.tail = append(p.tail, sc.Text()); len(p.tail) > tailLines {
				p.tail = p.tail[1:]
			}
			p.mu.Unlock()
			select {
			case p.notify <- struct{}{}:
			default:
			}
		}
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *serverProc) pid() int { return p.cmd.Process.Pid }

// waitLog waits up to d for a line of the log that holds want, and
// returns it.
func (p *serverProc) waitLog(want string, d time.Duration) (string, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		p.mu.Lock()
		for _, l := range p.head {
			if strings.Contains(l, want) {
				p.mu.Unlock()
				return l, nil
			}
		}
		p.mu.Unlock()
		select {
		case <-p.notify:
		case <-p.exited:
			return "", fmt.Errorf("%s exited before logging %q: %v; its last log lines: %s", p.name, want, p.waitErr, p.lastLines())
		case <-t.C:
			return "", fmt.Errorf("%s did not log %q within %s", p.name, want, d)
		}
	}
}

// listenAddr waits for hangoutd's msg=listening line and returns its addr.
func (p *serverProc) listenAddr(d time.Duration) (string, error) {
	line, err := p.waitLog("msg=listening", d)
	if err != nil {
		return "", err
	}
	i := strings.Index(line, "addr=")
	if i < 0 {
		return "", fmt.Errorf("%s: no addr= in %q", p.name, line)
	}
	return strings.Trim(strings.Fields(line[i+len("addr="):])[0], `"`), nil
}

func (p *serverProc) lastLines() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, " | ")
}

// done reports whether the process has exited.
func (p *serverProc) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// died says why the process exited, or "" while it runs.
func (p *serverProc) died() string {
	if !p.done() {
		return ""
	}
	return fmt.Sprintf("%s exited during the run (%v); its last log lines: %s", p.name, p.waitErr, p.lastLines())
}

// stop ends the process: SIGTERM, then SIGKILL after 10 s. It returns
// once the process is reaped.
func (p *serverProc) stop() {
	if p.done() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// stopAll stops every process at once and waits for all.
func stopAll(ps []*serverProc) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
}

// freePort is a loopback TCP port free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var errNoNATS = errors.New("no nats-server binary")
