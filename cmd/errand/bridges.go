package main

import (
	"github.com/errandhq/errand/bridge"
	bamqp "github.com/errandhq/errand/bridge/amqp"
	bkafka "github.com/errandhq/errand/bridge/kafka"
	bmqtt "github.com/errandhq/errand/bridge/mqtt"
	bnats "github.com/errandhq/errand/bridge/nats"
)

// dialers are the broker clients this errand has, one per broker.
func dialers() map[string]bridge.Dialer {
	return map[string]bridge.Dialer{bridge.NATS: bnats.Dialer{}, bridge.MQTT: bmqtt.Dialer{}, bridge.AMQP: bamqp.Dialer{},
		bridge.Kafka: bkafka.Dialer{}}
}
