// Command kfake runs franz-go's kfake broker (one broker) for `make
// compare`: the same load against Sluice and against kfake, in one run.
// With --data-dir it persists to disk and, with --sync, fsyncs every
// batch (as durable as a Sluice acknowledgement); without, it keeps
// everything in memory. It prints "bootstrap: ADDR" once it listens and
// runs until SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1; 0 picks a free one")
	dataDir := flag.String("data-dir", "", "persist to this directory (empty: in memory)")
	sync := flag.Bool("sync", false, "fsync every produced batch (needs --data-dir)")
	partitions := flag.Int("default-partitions", 16, "partitions of auto-created topics")
	flag.Parse()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(*port), kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions)}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
		if *sync {
			opts = append(opts, kfake.SyncWrites())
		}
	} else if *sync {
		fmt.Fprintln(os.Stderr, "kfake: --sync needs --data-dir")
		os.Exit(2)
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		os.Exit(1)
	}
	fmt.Printf("bootstrap: %s\n", c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	c.Close()
}
