package main

import "sync/atomic"

// healthy answers /healthz: true between startup and shutdown.
var healthy atomic.Bool
