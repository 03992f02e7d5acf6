package kafkaread

import "fmt"

// OffsetGoneError says a slot no longer holds the offset a replay must start at:
// the log was deleted or truncated past it. Replay never starts later than asked.
type OffsetGoneError struct {
	Topic    string
	Slot     int32
	Needed   int64
	LogStart int64
}

func (e *OffsetGoneError) Error() string {
	return fmt.Sprintf("kafkaread: %s slot %d needs offset %d but the log starts at %d", e.Topic, e.Slot, e.Needed, e.LogStart)
}

// OffsetPastEndError says a slot's log ends before the offset a store or a
// snapshot says it has reached: the topic was deleted and created again (or
// belongs to another Kafka cluster). Replaying onto that state would mix two
// logs, so it is refused.
type OffsetPastEndError struct {
	Topic   string
	Slot    int32
	Reached int64
	LogEnd  int64
}

func (e *OffsetPastEndError) Error() string {
	return fmt.Sprintf("kafkaread: %s slot %d: the state to replay onto has reached offset %d but the log ends at %d (was the topic deleted and created again?)", e.Topic, e.Slot, e.Reached, e.LogEnd)
}
