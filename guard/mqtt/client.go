package mqtt

import (
	paho "github.com/eclipse/paho.mqtt.golang"
)

// ClientOptions returns paho client options that reach the broker the way the Publisher does:
// the broker URL, the username with the password from password_file or password_env, and TLS
// (ca_file, cert_file and key_file, server_name, insecure_skip_verify). It is for MQTT clients
// other than the Publisher, such as oodguard watch, which set their own client id, session and
// handlers. Only the connection fields are checked (ValidateConnection); the password and the
// TLS files are read now, and their errors name the field.
func (c Config) ClientOptions() (*paho.ClientOptions, error) {
	if err := c.ValidateConnection(); err != nil {
		return nil, err
	}
	password, err := c.password()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	o := paho.NewClientOptions().AddBroker(c.Broker)
	if c.Username != "" {
		o.SetUsername(c.Username)
		o.SetPassword(password)
	}
	if tlsCfg != nil {
		o.SetTLSConfig(tlsCfg)
	}
	return o, nil
}
