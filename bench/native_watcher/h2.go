package main

// The h2 transport: gRPC streams spoken directly over HTTP/2 frames, one reader
// goroutine per TCP connection and none per stream.
//
// Why: with grpc-go every received message crosses from the connection's reader
// goroutine to the stream's own goroutine (a buffer hand-off, a wake-up and a
// switch), which is most of grpc-go's 25.7 µs of CPU per message at 10,000
// streams; those cycles come off the two cores the server under test needs.
// This is what h2load is to the read-path benchmark: the same wire protocol
// (HEADERS, length-prefixed DATA, trailers with grpc-status), every message
// still decoded in full, at a fraction of the cost.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

const (
	// Both windows are opened wide at the start and topped up after half is used,
	// so flow control never holds a message back.
	h2Window    = 1 << 30
	h2ReadBuf   = 256 << 10
	h2WriteBuf  = 64 << 10
	h2MaxHeader = 64 << 10
)

// h2stream is one gRPC call's receive state; only its connection's reader touches it
// after the opener has registered it.
type h2stream struct {
	opening
	pending []byte // bytes of a message not yet complete
	headers bool   // response headers seen: the next HEADERS frame is the trailers
	unacked int    // received bytes not yet returned to the stream's window
}

// h2conn is one TCP connection carrying up to --per-channel streams.
type h2conn struct {
	w       *worker
	conn    net.Conn
	wmu     sync.Mutex // guards framer writes, the hpack encoder and nextID
	out     *bufio.Writer
	in      *bufio.Reader
	framer  *http2.Framer
	hbuf    bytes.Buffer
	henc    *hpack.Encoder
	nextID  uint32
	smu     sync.Mutex
	streams map[uint32]*h2stream
	unacked int // connection-level bytes not yet returned to the window
}

func dialH2(w *worker) (*h2conn, error) {
	conn, err := net.Dial("tcp", w.target)
	if err != nil {
		return nil, err
	}
	c := &h2conn{w: w, conn: conn, nextID: 1, streams: map[uint32]*h2stream{}}
	c.out = bufio.NewWriterSize(conn, h2WriteBuf)
	c.in = bufio.NewReaderSize(conn, h2ReadBuf)
	c.framer = http2.NewFramer(c.out, c.in)
	c.framer.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.framer.MaxHeaderListSize = h2MaxHeader
	c.henc = hpack.NewEncoder(&c.hbuf)
	if _, err := c.out.WriteString(http2.ClientPreface); err != nil {
		conn.Close()
		return nil, err
	}
	err = c.framer.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2Window},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeader})
	if err == nil {
		err = c.framer.WriteWindowUpdate(0, h2Window-65535)
	}
	if err == nil {
		err = c.out.Flush()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	w.wg.Add(1)
	go c.read()
	return c, nil
}

// open starts one call: HEADERS, then the request as one length-prefixed DATA frame
// (ending the client's half unless the method is bidirectional). A stream that cannot
// be sent is ended (counted, reported not opened) here.
func (c *h2conn) open(request []byte, ready chan<- bool) {
	c.w.slots <- struct{}{}
	s := &h2stream{opening: opening{w: c.w, ready: ready}}
	c.wmu.Lock()
	id := c.nextID
	c.nextID += 2
	c.smu.Lock()
	c.streams[id] = s
	c.smu.Unlock()
	err := c.send(id, request)
	c.wmu.Unlock()
	if err != nil {
		c.end(id, s, "error_open")
	}
}

// send writes a new call's HEADERS and request; the caller holds wmu.
func (c *h2conn) send(id uint32, request []byte) error {
	c.hbuf.Reset()
	for _, hf := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":path", c.w.spec.method},
		{":authority", c.w.target}, {"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		if err := c.henc.WriteField(hpack.HeaderField{Name: hf[0], Value: hf[1]}); err != nil {
			return err
		}
	}
	err := c.framer.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
	if err != nil {
		return err
	}
	body := make([]byte, 5+len(request))
	binary.BigEndian.PutUint32(body[1:5], uint32(len(request)))
	copy(body[5:], request)
	if err := c.framer.WriteData(id, !c.w.spec.bidi, body); err != nil {
		return err
	}
	return c.out.Flush()
}

func (c *h2conn) write(f func() error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := f(); err == nil {
		_ = c.out.Flush()
	}
}

func (c *h2conn) stream(id uint32) *h2stream {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.streams[id]
}

// end forgets a stream that the server finished, counting why.
func (c *h2conn) end(id uint32, s *h2stream, what string) {
	c.smu.Lock()
	delete(c.streams, id)
	c.smu.Unlock()
	if c.w.ctx.Err() == nil {
		c.w.count(what)
	}
	s.established(false)
}

// read runs until the connection closes: every frame of every stream passes here.
func (c *h2conn) read() {
	defer c.w.wg.Done()
	defer func() {
		c.smu.Lock()
		left := c.streams
		c.streams = map[uint32]*h2stream{}
		c.smu.Unlock()
		for id, s := range left {
			c.end(id, s, "error_Unavailable")
		}
	}()
	for {
		if c.w.readPause > 0 && c.in.Buffered() == 0 {
			// Everything read so far is handled: let more arrive before the next read
			// system call (see --read-pause).
			time.Sleep(c.w.readPause)
		}
		frame, err := c.framer.ReadFrame()
		if err != nil {
			if c.w.ctx.Err() == nil {
				c.w.count("error_connection")
			}
			return
		}
		switch f := frame.(type) {
		case *http2.DataFrame:
			c.data(f)
		case *http2.MetaHeadersFrame:
			c.headers(f)
		case *http2.RSTStreamFrame:
			if s := c.stream(f.StreamID); s != nil {
				c.end(f.StreamID, s, "error_rst_"+f.ErrCode.String())
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(c.framer.WriteSettingsAck)
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				c.write(func() error { return c.framer.WritePing(true, data) })
			}
		case *http2.GoAwayFrame:
			c.w.count("goaway_" + f.ErrCode.String())
		}
	}
}

func (c *h2conn) data(f *http2.DataFrame) {
	length := int(f.Header().Length)
	c.unacked += length
	s := c.stream(f.StreamID)
	var topUp [2]uint32 // connection, stream
	if c.unacked >= h2Window/2 {
		topUp[0], c.unacked = uint32(c.unacked), 0
	}
	if s != nil {
		s.unacked += length
		if s.unacked >= h2Window/2 {
			topUp[1], s.unacked = uint32(s.unacked), 0
		}
	}
	if topUp[0] != 0 || topUp[1] != 0 {
		id := f.StreamID
		c.write(func() error {
			if topUp[0] != 0 {
				if err := c.framer.WriteWindowUpdate(0, topUp[0]); err != nil {
					return err
				}
			}
			if topUp[1] != 0 {
				return c.framer.WriteWindowUpdate(id, topUp[1])
			}
			return nil
		})
	}
	if s == nil {
		return
	}
	// The framer reuses its read buffer: a partial message must be copied out.
	buf := f.Data()
	if len(s.pending) > 0 {
		s.pending = append(s.pending, buf...)
		buf = s.pending
	}
	for len(buf) >= 5 {
		size := int(binary.BigEndian.Uint32(buf[1:5]))
		if len(buf) < 5+size {
			break
		}
		if buf[0] != 0 {
			c.end(f.StreamID, s, "error_compressed_message")
			return
		}
		if !c.message(f.StreamID, s, buf[5:5+size]) {
			return
		}
		buf = buf[5+size:]
	}
	s.pending = append(s.pending[:0], buf...)
	if f.StreamEnded() {
		c.end(f.StreamID, s, "error_ended_without_trailers")
	}
}

// message decodes and records one response; false when the stream is over.
func (c *h2conn) message(id uint32, s *h2stream, payload []byte) bool {
	w := c.w
	m := w.spec.newResponse()
	if err := proto.Unmarshal(payload, m); err != nil {
		c.end(id, s, "error_decode")
		return false
	}
	return w.received(m, s.established, func(what string) {
		c.end(id, s, what)
	})
}

func (c *h2conn) headers(f *http2.MetaHeadersFrame) {
	s := c.stream(f.StreamID)
	if s == nil {
		return
	}
	if !s.headers && !f.StreamEnded() {
		s.headers = true
		if st := f.PseudoValue("status"); st != "200" {
			c.end(f.StreamID, s, "error_http_"+st)
		}
		return
	}
	// Trailers (or a trailers-only answer): the call is over.
	grpcStatus := ""
	for _, hf := range f.RegularFields() {
		if hf.Name == "grpc-status" {
			grpcStatus = hf.Value
		}
	}
	code, err := strconv.Atoi(grpcStatus)
	if err != nil {
		c.end(f.StreamID, s, fmt.Sprintf("error_bad_grpc_status_%q", grpcStatus))
		return
	}
	c.end(f.StreamID, s, "error_"+codes.Code(code).String())
}
