package server

import (
	"context"
	"runtime"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the proto codec
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// A unary read's response is held in the read memory until gRPC has
// written it to the connection, not only until the call ends: the call
// ends once the response is queued on the connection, and queued responses
// were most of a loaded node's heap (141 MiB of gRPC buffers in a test
// under a 32 MiB bound). The data port's codec encodes a response handed
// to it with sendHeld into a buffer of its own, and the transport's freeing
// of that buffer gives the hold back.

// ServerOptions are what the data port needs to give back what calls hold:
// its stats handler and codec.
func (m *ReadMemory) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.StatsHandler(m), grpc.ForceServerCodecV2(readCodec{m: m, proto: encoding.GetCodecV2("proto")})}
}

// sendHeld hands the hold over to msg's encoded bytes: the codec gives it
// back once the transport has written them (or the call's end does, if msg
// is never encoded).
func (h *readHold) sendHeld(msg proto.Message) {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.msg = msg
	h.mu.Unlock()
	h.m.sending.Store(msg, h)
}

// readCodec is the proto codec, but a message handed over with sendHeld is
// encoded into a buffer whose freeing gives its hold back.
type readCodec struct {
	m     *ReadMemory
	proto encoding.CodecV2
}

func (c readCodec) Name() string { return c.proto.Name() }

func (c readCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c readCodec) Marshal(v any) (mem.BufferSlice, error) {
	held, ok := c.m.sending.LoadAndDelete(v)
	if !ok {
		return c.proto.Marshal(v)
	}
	h := held.(*readHold)
	msg := v.(proto.Message)
	buf, err := proto.MarshalOptions{}.MarshalAppend(make([]byte, 0, proto.Size(msg)), msg)
	if err != nil || mem.IsBelowBufferPoolingThreshold(len(buf)) {
		return mem.BufferSlice{mem.SliceBuffer(buf)}, err // the call's end gives the hold back
	}
	h.mu.Lock()
	h.encoded = true // from here the buffer's freeing gives the hold back, not the call's end
	h.mu.Unlock()
	p := &buf
	// A buffer the transport drops without freeing it (a connection torn
	// down) gives the hold back when collected.
	runtime.AddCleanup(p, func(h *readHold) { h.giveAll() }, h)
	return mem.BufferSlice{mem.NewBuffer(p, givesBack{h})}, nil
}

// givesBack is the pool of one encoded response: putting it back gives its
// hold back.
type givesBack struct{ h *readHold }

func (g givesBack) Get(n int) *[]byte {
	b := make([]byte, n)
	return &b
}

func (g givesBack) Put(*[]byte) { g.h.giveAll() }

// endHeld gives back, at a call's end, what its holds still hold, except
// a response the transport has yet to write.
func (m *ReadMemory) endHeld(_ context.Context, holds []*readHold) {
	for _, h := range holds {
		h.mu.Lock()
		encoded, msg := h.encoded, h.msg
		h.mu.Unlock()
		if msg != nil {
			m.sending.Delete(msg) // never encoded
		}
		if !encoded {
			h.giveAll()
		}
	}
}
