// Package pipeline holds the stages a write passes through inside its
// partition's goroutine (sanitize, filter, enrich, and any a library user
// registers) and their YAML config.
//
//	reg := pipeline.NewRegistry()              // the built-ins
//	reg.Register("upper", buildUpper)          // a stage of your own
//	stages, err := reg.LoadConfig("sluice.yaml")
//	w, keep, err := pipeline.Run(stages, w)    // in the partition core
//
// Nothing here starts goroutines, reads a clock or does I/O on a write.
package pipeline
