//go:build !linux

package pgcluster_test

// runOwnerHelper does nothing outside Linux, where nothing ties a server's
// life to its owner's and TestServerDoesNotOutliveOwner does not exist.
func runOwnerHelper() bool { return false }
