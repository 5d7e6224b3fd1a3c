package meta

// Requests of topic administration after creation (DeleteTopics,
// CreatePartitions, AlterTopicConfigs, DeleteRecords); the state
// machine behind them is meta/controller (topics_admin.go, records.go).

// PartitionsSpec asks for a topic to have Count partitions in all.
type PartitionsSpec struct {
	Name  string
	Count int32
}

// ConfigChange sets (Value non-nil) or removes a topic config.
type ConfigChange struct {
	Name  string
	Value *string
}

// DeleteRecordsSpec asks to delete a partition's records below Offset;
// -1 means up to the high watermark (Kafka's "delete everything").
type DeleteRecordsSpec struct {
	TopicPartition
	Offset int64
}
