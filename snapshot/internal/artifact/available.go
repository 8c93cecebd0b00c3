package artifact

// Available checks that dest may receive a directory (it is absent or an
// empty directory and has a parent) and returns its absolute path and
// parent.
func Available(dest string) (abs, parent string, err error) {
	if abs, parent, err = parentOf(dest); err != nil {
		return "", "", err
	}
	if err := checkAvailable(abs, DestDir); err != nil {
		return "", "", err
	}
	return abs, parent, nil
}
