// Command native_watcher is bench/watch_worker.py in Go: one watcher process of
// bench.watch that holds many Watch streams and records, per revision, when
// each stream decoded the change.
//
// It exists because on a 2-core machine the Python watchers spend more CPU per
// change than the server that sends it (about 45 µs per message against the
// server's 34 µs at 10,000 streams), so the Python figures measure the load
// generator as much as the server. The read-path benchmark uses native load
// generators (h2load, ghz) for the same reason.
//
// It speaks watch_worker.py's line protocol on stdin/stdout (open N, count REV,
// report PATH, quit) and writes the same report JSON, so the driver treats both
// alike. Every message is decoded in full into a new message of the generated
// Go types in pb/ (protoc-gen-go, as a generated client's Recv does); reflective
// decoding with dynamicpb, used before, was about 40% of this process's CPU at
// 10,000 streams.
//
// --transport h2 (the default, h2.go) speaks gRPC over raw HTTP/2 frames with
// one goroutine per connection; --transport grpc uses grpc-go, a goroutine per
// stream, at about a quarter more CPU per message.
//
// Timestamps are CLOCK_MONOTONIC seconds, the clock Python's time.monotonic()
// reads, so the driver can subtract its own acknowledgement times.
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	etcdpb "configsvc/bench/native_watcher/pb"
	configsvcpb "configsvc/bench/native_watcher/pb/configsvc/v1"
)

const (
	openInFlight = 200 // streams being established at once, as in watch_worker.py
	openTimeout  = 120 * time.Second
)

// clockBase and clockStart pin CLOCK_MONOTONIC once; monotonic() then adds Go's own
// monotonic reading (vDSO), not a clock_gettime system call per message.
var clockBase, clockStart = func() (float64, time.Time) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9, time.Now()
}()

func monotonic() float64 {
	return clockBase + time.Since(clockStart).Seconds()
}

// kindSpec says how one kind of server is watched and how its messages read.
type kindSpec struct {
	method      string
	bidi        bool
	newRequest  func() proto.Message
	newResponse func() proto.Message
	classify    func(m proto.Message) (what string, revision int64)
}

func configsvcSpec() kindSpec {
	return kindSpec{
		method:      "/configsvc.v1.WatchService/Watch",
		newRequest:  func() proto.Message { return &configsvcpb.WatchRequest{} },
		newResponse: func() proto.Message { return &configsvcpb.WatchResponse{} },
		classify: func(m proto.Message) (string, int64) {
			switch kind := m.(*configsvcpb.WatchResponse).GetKind().(type) {
			case *configsvcpb.WatchResponse_Changes:
				return "change", kind.Changes.GetRevision()
			case *configsvcpb.WatchResponse_SnapshotEnd:
				return "established", 0
			case *configsvcpb.WatchResponse_Snapshot:
				return "message_snapshot", 0
			case *configsvcpb.WatchResponse_Progress:
				return "message_progress", 0
			case *configsvcpb.WatchResponse_Reset_:
				return "message_reset", 0
			case nil:
				return "message_none", 0
			default:
				return fmt.Sprintf("message_%T", kind), 0
			}
		},
	}
}

func etcdSpec() kindSpec {
	return kindSpec{
		method:      "/etcdserverpb.Watch/Watch",
		bidi:        true,
		newRequest:  func() proto.Message { return &etcdpb.WatchRequest{} },
		newResponse: func() proto.Message { return &etcdpb.WatchResponse{} },
		classify: func(m proto.Message) (string, int64) {
			r := m.(*etcdpb.WatchResponse)
			if events := r.GetEvents(); len(events) > 0 {
				return "change", events[0].GetKv().GetModRevision()
			}
			if r.GetCreated() {
				return "established", 0
			}
			if r.GetCanceled() {
				return "canceled", 0
			}
			return "message_progress", 0
		},
	}
}

type worker struct {
	spec       kindSpec
	target     string
	perChannel int
	transport  string // "grpc" (grpc-go) or "h2" (h2.go)
	readPause  time.Duration
	request    proto.Message
	rawRequest []byte

	mu             sync.Mutex
	conns          []*grpc.ClientConn
	h2conns        []*h2conn
	channelStreams []int
	samples        map[int64][]float64
	seen           map[int64]int
	counts         map[string]int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  chan struct{}
}

// startStream opens one more stream on the newest connection, or on a new one once
// that carries --per-channel streams.
func (w *worker) startStream(ready chan<- bool) error {
	last := len(w.channelStreams) - 1
	if last < 0 || w.channelStreams[last] >= w.perChannel {
		if w.transport == "h2" {
			conn, err := dialH2(w)
			if err != nil {
				return err
			}
			w.h2conns = append(w.h2conns, conn)
		} else {
			// Every ClientConn has a transport (TCP connection) of its own.
			conn, err := grpc.NewClient(w.target,
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
			if err != nil {
				return err
			}
			w.conns = append(w.conns, conn)
		}
		w.channelStreams = append(w.channelStreams, 0)
		last++
	}
	w.channelStreams[last]++
	w.wg.Add(1)
	if w.transport == "h2" {
		conn := w.h2conns[last]
		go func() {
			defer w.wg.Done()
			conn.open(w.rawRequest, ready)
		}()
	} else {
		go w.stream(w.conns[last], ready)
	}
	return nil
}

func (w *worker) streams() int {
	total := 0
	for _, n := range w.channelStreams {
		total += n
	}
	return total
}

func (w *worker) count(key string) {
	w.mu.Lock()
	w.counts[key]++
	w.mu.Unlock()
}

// opening is a stream's claim on one of the openInFlight slots until it is
// established (or never will be).
type opening struct {
	w     *worker
	ready chan<- bool
	once  sync.Once
}

// established frees the slot and reports whether the stream opened, once: with h2 the
// opener (a failed write) and the reader (the connection closing) may both try.
func (o *opening) established(ok bool) {
	o.once.Do(func() {
		<-o.w.slots
		o.ready <- ok
	})
}

// stream holds one Watch stream until it ends or the worker quits; ready
// receives true once the stream is established, false if it never is.
func (w *worker) stream(conn *grpc.ClientConn, ready chan<- bool) {
	defer w.wg.Done()
	w.slots <- struct{}{}
	o := &opening{w: w, ready: ready}
	defer o.established(false)
	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: w.spec.bidi}
	cs, err := conn.NewStream(w.ctx, desc, w.spec.method)
	if err != nil {
		w.count("error_" + status.Code(err).String())
		return
	}
	if err := cs.SendMsg(w.request); err != nil {
		w.count("error_" + status.Code(err).String())
		return
	}
	if !w.spec.bidi {
		if err := cs.CloseSend(); err != nil {
			w.count("error_" + status.Code(err).String())
			return
		}
	}
	for {
		m := w.spec.newResponse()
		if err := cs.RecvMsg(m); err != nil {
			if w.ctx.Err() == nil {
				w.count("error_" + status.Code(err).String())
			}
			return
		}
		if !w.received(m, o.established, w.count) {
			return
		}
	}
}

// received records one decoded response of a stream; false when the stream is over
// (end has been called with why).
func (w *worker) received(m proto.Message, established func(bool),
	end func(string)) bool {
	now := monotonic()
	what, revision := w.spec.classify(m)
	switch what {
	case "change":
		w.mu.Lock()
		w.samples[revision] = append(w.samples[revision], now)
		w.seen[revision]++
		w.mu.Unlock()
	case "established":
		established(true)
	case "canceled":
		end("message_canceled")
		return false
	default:
		w.count(what)
	}
	return true
}

func (w *worker) open(n int) (int, int) {
	ready := make(chan bool, n)
	for i := 0; i < n; i++ {
		if err := w.startStream(ready); err != nil {
			w.count("error_dial")
			ready <- false
		}
	}
	failed := 0
	deadline := time.After(openTimeout)
	for i := 0; i < n; i++ {
		select {
		case ok := <-ready:
			if !ok {
				failed++
			}
		case <-deadline:
			return w.streams(), failed + n - i
		}
	}
	return w.streams(), failed
}

func (w *worker) report(path string) error {
	w.mu.Lock()
	samples := make(map[string][]float64, len(w.samples))
	for rev, times := range w.samples {
		samples[strconv.FormatInt(rev, 10)] = times
	}
	body := map[string]any{
		"streams":         w.streams(),
		"channel_streams": w.channelStreams,
		"counts":          w.counts,
		"samples":         samples,
	}
	data, err := json.Marshal(body)
	w.samples = map[int64][]float64{}
	w.mu.Unlock()
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func (w *worker) close() {
	w.cancel()
	for _, c := range w.h2conns { // their readers return when the connection closes
		_ = c.conn.Close()
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	for _, c := range w.conns {
		_ = c.Close()
	}
}

func main() {
	kind := flag.String("kind", "", "configsvc or etcd")
	target := flag.String("target", "", "host:port")
	requestHex := flag.String("request", "", "the request every stream sends, serialized, in hex")
	transport := flag.String("transport", "h2",
		"h2: gRPC over raw HTTP/2 frames, one goroutine per connection (h2.go); "+
			"grpc: grpc-go, a goroutine per stream")
	readPause := flag.Duration("read-pause", time.Millisecond,
		"h2: once a connection's received bytes are all handled, wait this long before "+
			"reading again, so one read system call takes what arrived meanwhile; it adds at "+
			"most this much to any latency measured, and saves the watchers a wake-up and an "+
			"ACK per TCP segment (0: read at once)")
	perChannel := flag.Int("per-channel", 500, "streams per HTTP/2 connection")
	maxSeconds := flag.Float64("max-seconds", 900, "exit on its own after this long")
	cpuProfile := flag.String("cpuprofile", "", "write a Go CPU profile here (until quit)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "native_watcher: --cpuprofile:", err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "native_watcher: --cpuprofile:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}

	var spec kindSpec
	switch *kind {
	case "configsvc":
		spec = configsvcSpec()
	case "etcd":
		spec = etcdSpec()
	default:
		fmt.Fprintln(os.Stderr, "native_watcher: --kind must be configsvc or etcd")
		os.Exit(2)
	}
	if *transport != "h2" && *transport != "grpc" {
		fmt.Fprintln(os.Stderr, "native_watcher: --transport must be h2 or grpc")
		os.Exit(2)
	}
	rawRequest, err := hex.DecodeString(*requestHex)
	if err != nil {
		fmt.Fprintln(os.Stderr, "native_watcher: --request:", err)
		os.Exit(2)
	}
	request := spec.newRequest()
	if err := proto.Unmarshal(rawRequest, request); err != nil {
		fmt.Fprintln(os.Stderr, "native_watcher: --request:", err)
		os.Exit(2)
	}

	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{
		spec: spec, target: *target, perChannel: *perChannel, request: request,
		transport: *transport, rawRequest: rawRequest, readPause: *readPause,
		samples: map[int64][]float64{}, seen: map[int64]int{}, counts: map[string]int{},
		ctx: ctx, cancel: cancel, slots: make(chan struct{}, openInFlight),
	}
	defer w.close()

	lines := make(chan string)
	go func() {
		scanner := bufio.NewScanner(os.Stdin)
		for scanner.Scan() {
			lines <- scanner.Text()
		}
		close(lines)
	}()
	out := bufio.NewWriter(os.Stdout)
	answer := func(s string) {
		fmt.Fprintln(out, s)
		out.Flush()
	}
	deadline := time.After(time.Duration(*maxSeconds * float64(time.Second)))
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-deadline:
			fmt.Fprintln(os.Stderr, "native_watcher: --max-seconds reached; exiting")
			return
		}
		words := strings.Fields(line)
		if !ok || len(words) == 0 || words[0] == "quit" {
			return
		}
		argument := ""
		if len(words) > 1 {
			argument = words[1]
		}
		switch words[0] {
		case "open":
			n, err := strconv.Atoi(argument)
			if err != nil {
				answer("error open needs a count")
				continue
			}
			total, failed := w.open(n)
			answer(fmt.Sprintf("opened %d %d", total, failed))
		case "count":
			rev, err := strconv.ParseInt(argument, 10, 64)
			if err != nil {
				answer("error count needs a revision")
				continue
			}
			w.mu.Lock()
			n := w.seen[rev]
			w.mu.Unlock()
			answer(fmt.Sprintf("count %d", n))
		case "report":
			if err := w.report(argument); err != nil {
				answer("error " + err.Error())
				continue
			}
			answer("reported")
		default:
			answer(fmt.Sprintf("error unknown command %q", words[0]))
		}
	}
}
