package postgres

// SetResealBatch makes reseal work in batches of n rows, so that a test
// can cross batch boundaries with a handful of rows; it returns the undo.
func SetResealBatch(n int) (undo func()) {
	old := resealBatch
	resealBatch = n
	return func() { resealBatch = old }
}
