package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Message is one MQTT message waiting to be published.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte // 0, 1 or 2
	Retained bool
}

// Validate reports whether m can be stored and published.
func (m Message) Validate() error {
	switch {
	case m.Topic == "":
		return errors.New("outbox: message has no topic")
	case len(m.Topic) > maxTopic:
		return fmt.Errorf("outbox: topic is %d bytes, more than %d", len(m.Topic), maxTopic)
	case m.QoS > 2:
		return fmt.Errorf("outbox: QoS %d is not 0, 1 or 2", m.QoS)
	case int64(len(m.Payload)) > maxPayload:
		return fmt.Errorf("outbox: payload is %d bytes, more than %d", len(m.Payload), maxPayload)
	}
	return nil
}

// The file format of one message, all integers big-endian:
//
//	magic     4 bytes  "OGQ1"
//	qos       1 byte
//	flags     1 byte   bit 0: retained
//	topic     2 bytes  length, then the topic
//	payload   4 bytes  length, then the payload
//	crc       4 bytes  CRC-32C of everything before it
const (
	magic      = "OGQ1"
	headerSize = 4 + 1 + 1 + 2 + 4
	trailer    = 4
	maxTopic   = 1<<16 - 1
	maxPayload = 256<<20 - 1 // MQTT's largest packet
	flagRetain = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a message file that cannot be decoded.
var errCorrupt = errors.New("corrupt message file")

// encodedSize is the size of m's file.
func encodedSize(m Message) int64 {
	return int64(headerSize + len(m.Topic) + len(m.Payload) + trailer)
}

func encode(m Message) []byte {
	b := make([]byte, 0, encodedSize(m))
	b = append(b, magic...)
	b = append(b, m.QoS)
	var flags byte
	if m.Retained {
		flags |= flagRetain
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Topic)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Payload)))
	b = append(b, m.Topic...)
	b = append(b, m.Payload...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decode(b []byte) (Message, error) {
	if len(b) < headerSize+trailer {
		return Message{}, fmt.Errorf("%w: %d bytes, shorter than a header", errCorrupt, len(b))
	}
	if string(b[:4]) != magic {
		return Message{}, fmt.Errorf("%w: bad magic %q", errCorrupt, b[:4])
	}
	topicLen := int(binary.BigEndian.Uint16(b[6:8]))
	payloadLen := int64(binary.BigEndian.Uint32(b[8:12]))
	if want := int64(headerSize+topicLen+trailer) + payloadLen; int64(len(b)) != want {
		return Message{}, fmt.Errorf("%w: %d bytes, header says %d", errCorrupt, len(b), want)
	}
	body := b[:len(b)-trailer]
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(b[len(b)-trailer:]); got != want {
		return Message{}, fmt.Errorf("%w: checksum %08x, want %08x", errCorrupt, got, want)
	}
	m := Message{
		QoS:      b[4],
		Retained: b[5]&flagRetain != 0,
		Topic:    string(body[headerSize : headerSize+topicLen]),
		Payload:  append([]byte(nil), body[headerSize+topicLen:]...),
	}
	if b[5]&^flagRetain != 0 {
		return Message{}, fmt.Errorf("%w: unknown flags %#x", errCorrupt, b[5])
	}
	if err := m.Validate(); err != nil {
		return Message{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return m, nil
}
