package mqtt

// CheckFiles reads what the configuration names outside itself, as New does, without
// connecting: the password (from password_file or password_env) and the TLS files. The
// daemon's -check-config uses it.
func (c Config) CheckFiles() error {
	_, err := c.ClientOptions()
	return err
}
