// ws-load: a WebSocket echo load client for bench/websocket.ts.
//
//	ws-load -url ws://127.0.0.1:18301/echo -c 100 -d 10s -size 64 -pipeline 1
//
// Every connection sends a text message of -size bytes, reads the echo, checks
// that it is the message it sent, and sends the next; -pipeline messages are in
// flight per connection. All connections are open before the clock starts; the
// first -warmup is not counted. Prints one JSON line:
//
//	{"messages":N,"seconds":S,"rate":R,"errors":E,"p50_ms":P,"p99_ms":Q,"client_cpu":U}
//
// client_cpu is the client's CPU time during the window over the window's
// length (1 = one core busy): near 1, the client may be the bottleneck.
//
// It is meant to cost no more CPU per message than the servers it measures, so
// it does not use a WebSocket library's message API: gobwas/ws does the
// handshake and the masking; then one epoll loop on one thread reads each
// ready socket once, parses the server's (unmasked) frames straight out of the
// read buffer and writes the next frames with one write call. No allocation
// per message. Linux only (epoll), like the benchmark (taskset).
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/bits"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
)

// A log-linear latency histogram in nanoseconds: 2^subBits buckets per power
// of two, so a percentile is off by at most 1/64 (1.6%). Fixed size, so
// recording costs no allocation and merging is cheap.
const subBits = 6

type histogram [64 << subBits]uint64

func bucket(ns int64) int {
	v := uint64(ns)
	if v < 1<<subBits {
		return int(v)
	}
	exp := bits.Len64(v) - subBits // >= 1
	return exp<<subBits | int(v>>(exp-1))&(1<<subBits-1)
}

// The middle of bucket i, in nanoseconds.
func bucketValue(i int) float64 {
	exp, mantissa := i>>subBits, i&(1<<subBits-1)
	if exp == 0 {
		return float64(mantissa)
	}
	low := float64(uint64(1<<subBits|mantissa) << (exp - 1))
	return low + float64(uint64(1)<<(exp-1))/2
}

func (h *histogram) percentile(p float64) float64 {
	var total uint64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return math.NaN()
	}
	rank := uint64(math.Ceil(p * float64(total)))
	var seen uint64
	for i, n := range h {
		seen += n
		if seen >= rank {
			return bucketValue(i)
		}
	}
	return math.NaN()
}

type result struct {
	messages uint64
	errors   uint64
	latency  histogram
}

type config struct {
	size, pipeline   int
	countFrom, until time.Time // the measured window
}

// One connection's state.
type client struct {
	cfg    *config
	fd     int    // the socket, non-blocking, owned by the event loop
	in     []byte // read buffer; in[:have] holds unparsed bytes
	have   int
	out    []byte // frames to write; out[off:] is not written yet
	off    int
	wantW  bool        // waiting for EPOLLOUT
	sent   []time.Time // send time of each message in flight (a FIFO ring)
	seqs   []uint64    // and its sequence number
	head   int
	flight int
	next   uint64 // the next sequence number to send
	want   []byte // scratch for the expected payload
	frag   []byte // a fragmented message being reassembled
	rng    uint32 // xorshift state for the masks
	res    *result
	done   bool
}

// filler fills a payload buffer once; payload then writes message seq's
// number in hex over its first 16 bytes. The number makes every message
// distinct, so a stale, lost or reordered echo is caught.
func filler(p []byte) {
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
}

func payload(p []byte, seq uint64) {
	const hex = "0123456789abcdef"
	for i := 0; i < 16 && i < len(p); i++ {
		p[i] = hex[(seq>>(60-4*i))&15]
	}
}

// frame appends a masked client frame (RFC 6455 5.2) holding payload p.
func (c *client) frame(op ws.OpCode, p []byte) {
	if c.off == len(c.out) { // all written: start the buffer over
		c.out, c.off = c.out[:0], 0
	}
	n := len(p)
	c.out = append(c.out, 0x80|byte(op))
	switch {
	case n < 126:
		c.out = append(c.out, 0x80|byte(n))
	case n < 1<<16:
		c.out = append(c.out, 0x80|126, byte(n>>8), byte(n))
	default:
		c.out = append(c.out, 0x80|127)
		c.out = binary.BigEndian.AppendUint64(c.out, uint64(n))
	}
	var mask [4]byte
	// Masks need not be strong here, only different: xorshift32.
	c.rng ^= c.rng << 13
	c.rng ^= c.rng >> 17
	c.rng ^= c.rng << 5
	binary.LittleEndian.PutUint32(mask[:], c.rng)
	c.out = append(c.out, mask[:]...)
	start := len(c.out)
	c.out = append(c.out, p...)
	ws.Cipher(c.out[start:], mask, 0)
}

// flush writes what it can of out; the rest waits for EPOLLOUT.
func (c *client) flush(ep int) error {
	for c.off < len(c.out) {
		n, err := write(c.fd, c.out[c.off:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if !c.wantW {
				c.wantW = true
				return epollMod(ep, c, syscall.EPOLLIN|syscall.EPOLLOUT|epollET)
			}
			return nil
		case err != nil:
			return err
		}
		c.off += n
	}
	if c.wantW {
		c.wantW = false
		return epollMod(ep, c, syscall.EPOLLIN|epollET)
	}
	return nil
}

// fill queues messages until -pipeline are in flight and writes them with
// one system call.
func (c *client) fill(ep int, now time.Time) error {
	for c.flight < c.cfg.pipeline {
		payload(c.want, c.next)
		c.frame(ws.OpText, c.want)
		slot := (c.head + c.flight) % c.cfg.pipeline
		c.sent[slot], c.seqs[slot] = now, c.next
		c.next++
		c.flight++
	}
	return c.flush(ep)
}

var errStop = errors.New("window over")

// message handles one whole message from the server.
func (c *client) message(op ws.OpCode, p []byte, now time.Time) error {
	if c.flight == 0 {
		return fmt.Errorf("a message arrived that was not sent (%d bytes)", len(p))
	}
	seq, sent := c.seqs[c.head], c.sent[c.head]
	c.head = (c.head + 1) % c.cfg.pipeline
	c.flight--
	if !now.Before(c.cfg.until) {
		return errStop
	}
	payload(c.want, seq)
	if op != ws.OpText || !bytes.Equal(p, c.want) {
		c.res.errors++
	} else if !now.Before(c.cfg.countFrom) {
		c.res.messages++
		c.res.latency[bucket(int64(now.Sub(sent)))]++
	}
	return nil
}

// parse consumes every complete frame in the read buffer.
func (c *client) parse(ep int, now time.Time) error {
	b := c.in[:c.have]
	for len(b) >= 2 {
		fin, op := b[0]&0x80 != 0, ws.OpCode(b[0]&0x0f)
		if b[1]&0x80 != 0 {
			return errors.New("the server sent a masked frame")
		}
		n, h := uint64(b[1]&0x7f), 2
		switch n {
		case 126:
			if len(b) < 4 {
				goto short
			}
			n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				goto short
			}
			n, h = binary.BigEndian.Uint64(b[2:]), 10
		}
		if n > uint64(len(c.in)-h) {
			return fmt.Errorf("a frame of %d bytes is larger than the read buffer", n)
		}
		if uint64(len(b)-h) < n {
			goto short
		}
		p := b[h : h+int(n)]
		b = b[h+int(n):]
		switch {
		case op == ws.OpPing:
			c.frame(ws.OpPong, p)
			if err := c.flush(ep); err != nil {
				return err
			}
		case op == ws.OpPong:
		case op == ws.OpClose:
			if len(p) >= 2 {
				return fmt.Errorf("the server closed the connection (close code %d %q)", binary.BigEndian.Uint16(p), p[2:])
			}
			return errors.New("the server closed the connection (close frame)")
		case !fin || op == ws.OpContinuation:
			// Fragments: gather them; the first one carries the opcode.
			if op != ws.OpContinuation {
				c.frag = append(c.frag[:0], byte(op))
			}
			c.frag = append(c.frag, p...)
			if fin {
				if err := c.message(ws.OpCode(c.frag[0]), c.frag[1:], now); err != nil {
					return err
				}
			}
		default:
			if err := c.message(op, p, now); err != nil {
				return err
			}
		}
	}
short:
	c.have = copy(c.in, b)
	return nil
}

// readable reads what the socket holds, handles the messages and sends their
// successors. Epoll is edge-triggered (it reports each arrival once, and does
// not poll the socket again on every wait); a read that leaves room in the
// buffer has taken all there was, and data arriving later is a new edge.
func (c *client) readable(ep int, now time.Time) error {
	for {
		room := len(c.in) - c.have
		n, err := read(c.fd, c.in[c.have:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return nil
		case err != nil:
			return err
		case n == 0:
			return errors.New("the server closed the connection")
		}
		c.have += n
		if err := c.parse(ep, now); err != nil {
			return err
		}
		if err := c.fill(ep, now); err != nil {
			return err
		}
		if n < room {
			return nil
		}
	}
}

// close sends a polite close frame (1000) when it can and closes the socket.
func (c *client) close() {
	c.done = true
	c.out, c.off = c.out[:0], 0
	c.frame(ws.OpClose, []byte{0x03, 0xe8})
	_, _ = syscall.Write(c.fd, c.out)
	_ = syscall.Close(c.fd)
}

// read and write on a non-blocking socket never block, so they skip the Go
// scheduler's system-call bookkeeping (measurable at this rate).
func read(fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func write(fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// syscall.EPOLLET is a negative int; Events is a uint32.
const epollET = 1 << 31

func epollMod(ep int, c *client, events uint32) error {
	return syscall.EpollCtl(ep, syscall.EPOLL_CTL_MOD, c.fd, &syscall.EpollEvent{Events: events, Fd: int32(c.fd)})
}

// loop runs every connection from one thread: epoll, then for each ready
// socket one read and one write. That is the least a client can do per
// message (a goroutine per connection costs a second, failing read and a
// park/wake per message, which made the client as busy as uWebSockets.js).
func loop(clients []*client, byFd []*client) (failures map[string]int, cpu float64) {
	failures = map[string]int{}
	fail := func(c *client, err error) {
		if err != errStop {
			c.res.errors++
			if _, ok := failures[err.Error()]; !ok {
				failures[err.Error()] = c.fd
			}
		}
		c.close()
	}
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		panic(err)
	}
	defer syscall.Close(ep)
	now := time.Now()
	live := 0
	for _, c := range clients {
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, c.fd, &syscall.EpollEvent{Events: syscall.EPOLLIN | epollET, Fd: int32(c.fd)}); err != nil {
			panic(err)
		}
		live++
		// Bytes that came right behind the handshake answer, then the first messages.
		if err := c.parse(ep, now); err != nil {
			fail(c, err)
			live--
		} else if err := c.fill(ep, now); err != nil {
			fail(c, err)
			live--
		}
	}
	// A server that stops answering ends the run this long after the window.
	cfg := clients[0].cfg
	giveUp := cfg.until.Add(5 * time.Second)
	events := make([]syscall.EpollEvent, 256)
	// The client's own CPU time over the window, as a share of the window: near
	// 1 means the client, not the server, may be what limits the rate.
	var cpu0, cpu1 time.Duration
	for live > 0 {
		n, err := syscall.EpollWait(ep, events, 100)
		if err == syscall.EINTR {
			continue
		} else if err != nil {
			panic(err)
		}
		now := time.Now()
		if cpu0 == 0 && !now.Before(cfg.countFrom) {
			cpu0 = cpuTime()
		}
		if cpu1 == 0 && !now.Before(cfg.until) {
			cpu1 = cpuTime()
		}
		for _, ev := range events[:n] {
			c := byFd[int(ev.Fd)]
			if c.done {
				continue
			}
			var err error
			if ev.Events&syscall.EPOLLOUT != 0 {
				err = c.flush(ep)
			}
			if err == nil && ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				// The time per socket, not per wait: a wait returns dozens of
				// sockets, and the last is handled well after the first.
				err = c.readable(ep, time.Now())
			}
			if err != nil {
				fail(c, err)
				live--
			}
		}
		if now.After(giveUp) {
			for _, c := range clients {
				if !c.done {
					fail(c, errors.New("no echo within 5 s after the window"))
					live--
				}
			}
		}
	}
	if cpu1 > cpu0 && cpu0 > 0 {
		cpu = float64(cpu1-cpu0) / float64(cfg.until.Sub(cfg.countFrom))
	}
	return failures, cpu
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	url := flag.String("url", "ws://127.0.0.1:18301/echo", "WebSocket URL")
	conns := flag.Int("c", 100, "connections")
	duration := flag.Duration("d", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", time.Second, "time before the measured window, not counted")
	size := flag.Int("size", 64, "message size in bytes")
	pipeline := flag.Int("pipeline", 1, "messages in flight per connection")
	flag.Parse()
	if *conns < 1 || *size < 1 || *pipeline < 1 || *duration <= 0 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "ws-load: -c, -size, -pipeline and -d must be positive")
		os.Exit(2)
	}

	// Connect everything first; one failure fails the run.
	clients := make([]*client, *conns)
	results := make([]result, *conns)
	cfg := &config{size: *size, pipeline: *pipeline}
	dialer := ws.Dialer{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	dialErrs := make([]error, *conns)
	for i := range clients {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			conn, br, _, err := dialer.Dial(context.Background(), *url)
			if err != nil {
				dialErrs[i] = err
				return
			}
			// Take the socket away from Go's poller: a duplicate of the
			// descriptor (same non-blocking socket), and the net.Conn closed.
			fd := -1
			if raw, err := conn.(*net.TCPConn).SyscallConn(); err == nil {
				_ = raw.Control(func(f uintptr) {
					if d, err := syscall.Dup(int(f)); err == nil {
						fd = d
					}
				})
			}
			_ = conn.Close()
			if fd < 0 {
				dialErrs[i] = errors.New("could not take over the socket")
				return
			}
			if err := syscall.SetNonblock(fd, true); err != nil {
				dialErrs[i] = err
				return
			}
			bufSize := 64 << 10
			if need := *size + 14; need > bufSize {
				bufSize = need
			}
			c := &client{
				cfg: cfg, fd: fd, in: make([]byte, bufSize),
				out:  make([]byte, 0, (*size+14)*(*pipeline)),
				sent: make([]time.Time, *pipeline), seqs: make([]uint64, *pipeline),
				want: make([]byte, *size), rng: uint32(i)*2654435761 + uint32(time.Now().UnixNano()) | 1,
				res: &results[i],
			}
			filler(c.want)
			if br != nil { // bytes the server sent right behind its handshake answer
				c.have = copy(c.in, mustPeek(br))
				ws.PutReader(br)
			}
			clients[i] = c
		}(i)
	}
	wg.Wait()
	for i, err := range dialErrs {
		if err != nil {
			fmt.Fprintf(os.Stderr, "ws-load: connection %d of %d to %s failed: %v\n", i+1, *conns, *url, err)
			os.Exit(1)
		}
	}

	maxFd := 0
	for _, c := range clients {
		maxFd = max(maxFd, c.fd)
	}
	byFd := make([]*client, maxFd+1)
	for _, c := range clients {
		byFd[c.fd] = c
	}
	cfg.countFrom = time.Now().Add(*warmup)
	cfg.until = cfg.countFrom.Add(*duration)
	failures, cpu := loop(clients, byFd)
	for err, fd := range failures {
		fmt.Fprintf(os.Stderr, "ws-load: a connection (fd %d): %v\n", fd, err)
	}

	var total result
	for i := range results {
		total.messages += results[i].messages
		total.errors += results[i].errors
		for j, n := range results[i].latency {
			total.latency[j] += n
		}
	}
	seconds := duration.Seconds()
	out, _ := json.Marshal(struct {
		Messages uint64   `json:"messages"`
		Seconds  float64  `json:"seconds"`
		Rate     float64  `json:"rate"`
		Errors   uint64   `json:"errors"`
		P50      *float64 `json:"p50_ms"`
		P99      *float64 `json:"p99_ms"`
		CPU      float64  `json:"client_cpu"`
	}{total.messages, seconds, math.Round(float64(total.messages) / seconds), total.errors,
		ms(total.latency.percentile(0.50)), ms(total.latency.percentile(0.99)), math.Round(cpu*100) / 100})
	fmt.Println(string(out))
}

func mustPeek(br interface {
	Buffered() int
	Peek(int) ([]byte, error)
}) []byte {
	b, _ := br.Peek(br.Buffered())
	return b
}

// ms turns nanoseconds into milliseconds to the microsecond; null when no sample.
func ms(ns float64) *float64 {
	if math.IsNaN(ns) {
		return nil
	}
	v := math.Round(ns/1e3) / 1e3
	return &v
}
