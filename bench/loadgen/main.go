// Command loadgen is the benchmarks' native MQTT load generator (python -m bench pipeline, bridge, mqtt).
//
// Publisher mode: N connections (MQTT 3.1.1, QoS 1, over TLS when -ca is given) with a vendor's login publish
// the platform's SensorReading JSON on ioc/v1/{unit}/{kind}/{vendor}/{device}, one or many readings per
// message, each device numbering its readings. The offered load follows -steps "rate:seconds,..." (readings/s);
// after each step a JSON line reports what was offered, published and acknowledged (PUBACK) and the
// generator's own CPU. Subscriber mode (-subscribe): counts messages and readings on a topic filter, for
// measuring the broker alone. Built by bench/loadgen.py into ~/.cache/ioc, keyed by a hash of this source.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

type step struct {
	rate    float64 // readings per second offered
	seconds float64
}

type counters struct {
	published atomic.Int64 // messages handed to the client
	acked     atomic.Int64 // messages the broker acknowledged (PUBACK)
	failed    atomic.Int64 // publishes that ended in an error
	behind    atomic.Int64 // messages not sent because the in-flight window was full
}

func main() {
	host := flag.String("host", "127.0.0.1", "broker host")
	port := flag.Int("port", 1883, "broker port")
	caFile := flag.String("ca", "", "CA file: connect over TLS and trust this CA")
	username := flag.String("username", "", "MQTT username (vendor.<id> for a vendor)")
	password := flag.String("password", "", "MQTT password")
	vendor := flag.String("vendor", "bench", "vendor id in the topic and the readings")
	unit := flag.String("unit", "25957", "unit code in the topic and the readings")
	conns := flag.Int("connections", 4, "MQTT connections")
	devices := flag.Int("devices", 500, "devices, spread over the connections")
	batch := flag.Int("batch", 1, "readings per message (1: one JSON object; more: a JSON array of one device's)")
	steps := flag.String("steps", "1000:10", "offered load: rate:seconds[,rate:seconds...] in readings/s")
	inflight := flag.Int("inflight", 2000, "unacknowledged messages per connection before the generator waits")
	prefix := flag.String("device-prefix", "d", "device id prefix")
	drainS := flag.Float64("drain", 30, "seconds to wait for the last acknowledgements")
	subscribe := flag.String("subscribe", "", "subscriber mode: count messages on this topic filter until SIGTERM")
	flag.Parse()

	opts := func(id string) *mqtt.ClientOptions {
		scheme := "tcp"
		o := mqtt.NewClientOptions().SetClientID(id).SetUsername(*username).SetPassword(*password)
		o.SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(false)
		o.SetKeepAlive(60 * time.Second).SetConnectTimeout(20 * time.Second).SetWriteTimeout(30 * time.Second)
		if *caFile != "" {
			scheme = "ssl"
			pem, err := os.ReadFile(*caFile)
			fail(err, "reading the CA file")
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				fail(fmt.Errorf("no certificate in %s", *caFile), "reading the CA file")
			}
			o.SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		}
		o.AddBroker(fmt.Sprintf("%s://%s:%d", scheme, *host, *port))
		return o
	}
	if *subscribe != "" {
		runSubscriber(opts(fmt.Sprintf("loadgen-sub-%d", os.Getpid())), *subscribe)
		return
	}
	plan, err := parseSteps(*steps)
	fail(err, "-steps")
	if *conns < 1 || *devices < *conns || *batch < 1 {
		fail(fmt.Errorf("need connections ≥ 1, devices ≥ connections, batch ≥ 1"), "flags")
	}
	var c counters
	clients := make([]mqtt.Client, *conns)
	for i := range clients {
		clients[i] = mqtt.NewClient(opts(fmt.Sprintf("loadgen-%d-%d", os.Getpid(), i)))
		tok := clients[i].Connect()
		tok.Wait()
		fail(tok.Error(), "connecting")
	}
	emit(map[string]any{"event": "connected", "connections": *conns})
	var wg sync.WaitGroup
	start := time.Now()
	var offsetS float64
	for _, s := range plan {
		// Each connection sends its share of the step's messages, paced from the step's start.
		msgsPerS := s.rate / float64(*batch) / float64(*conns)
		stepStart := start.Add(time.Duration(offsetS * float64(time.Second)))
		before := snapshot(&c)
		cpuBefore := cpuSeconds()
		for i := range clients {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				publishStep(clients[i], i, *conns, *devices, *batch, *vendor, *unit, *prefix, msgsPerS, s.seconds,
					stepStart, *inflight, &c)
			}(i)
		}
		wg.Wait()
		offsetS += s.seconds
		after := snapshot(&c)
		emit(map[string]any{
			"event": "step", "offered_readings_per_s": s.rate, "seconds": s.seconds,
			"published_messages": after[0] - before[0], "acked_messages": after[1] - before[1],
			"failed_messages": after[2] - before[2], "behind_messages": after[3] - before[3],
			"readings_per_message": *batch, "cpu_s": cpuSeconds() - cpuBefore,
		})
	}
	deadline := time.Now().Add(time.Duration(*drainS * float64(time.Second)))
	for time.Now().Before(deadline) && c.acked.Load()+c.failed.Load() < c.published.Load() {
		time.Sleep(20 * time.Millisecond)
	}
	for _, cl := range clients {
		cl.Disconnect(250)
	}
	total := snapshot(&c)
	emit(map[string]any{
		"event": "done", "published_messages": total[0], "acked_messages": total[1], "failed_messages": total[2],
		"behind_messages": total[3], "published_readings": total[0] * int64(*batch),
		"acked_readings": total[1] * int64(*batch), "cpu_s": cpuSeconds(), "wall_s": time.Since(start).Seconds(),
	})
}

// publishStep paces one connection's messages for one step; a full in-flight window counts as "behind".
func publishStep(cl mqtt.Client, conn, conns, devices, batch int, vendor, unit, prefix string, msgsPerS, seconds float64,
	stepStart time.Time, inflight int, c *counters) {
	mine := make([]string, 0, devices/conns+1)
	for d := conn; d < devices; d += conns {
		mine = append(mine, fmt.Sprintf("%s%05d", prefix, d))
	}
	seqs := deviceSeqs(conn, len(mine))
	window := make(chan struct{}, inflight)
	sent, turn := 0, 0
	total := int(math.Round(seconds * msgsPerS)) // the step's share of this connection, all of it by the end
	for sent < total {
		elapsed := time.Since(stepStart).Seconds()
		due := total
		if elapsed < seconds {
			due = int(elapsed * msgsPerS)
		}
		for sent < due {
			sent++
			select {
			case window <- struct{}{}:
			default:
				c.behind.Add(1)
				continue
			}
			i := turn % len(mine)
			turn++
			topic := "ioc/v1/" + unit + "/water/" + vendor + "/" + mine[i]
			payload := readings(vendor, mine[i], unit, seqs[i], batch)
			seqs[i] += int64(batch)
			tok := cl.Publish(topic, 1, false, payload)
			c.published.Add(1)
			go func(t mqtt.Token) {
				t.Wait()
				if t.Error() != nil {
					c.failed.Add(1)
				} else {
					c.acked.Add(1)
				}
				<-window
			}(tok)
		}
		time.Sleep(time.Millisecond)
	}
}

// Sequences go on from step to step: each connection keeps its devices' next numbers.
var seqTable sync.Map

func deviceSeqs(conn, n int) []int64 {
	v, _ := seqTable.LoadOrStore(conn, make([]int64, n))
	return v.([]int64)
}

// readings is the payload: one SensorReading object, or a JSON array of `batch` of one device's readings.
func readings(vendor, device, unit string, seq int64, batch int) []byte {
	at := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	one := func(s int64) string {
		return `{"schema":"ioc.sensor-reading.v1","vendor":"` + vendor + `","device":"` + device + `","unit":"` + unit +
			`","kind":"water","seq":` + strconv.FormatInt(s, 10) + `,"observed_at":"` + at +
			`","values":{"waterLevel":0.5}}`
	}
	if batch == 1 {
		return []byte(one(seq))
	}
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < batch; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one(seq + int64(i)))
	}
	b.WriteByte(']')
	return []byte(b.String())
}

// runSubscriber counts messages (and readings: array items) on `filter` until SIGTERM/SIGINT, one line a second.
func runSubscriber(o *mqtt.ClientOptions, filter string) {
	var messages, items atomic.Int64
	o.SetCleanSession(true)
	cl := mqtt.NewClient(o)
	tok := cl.Connect()
	tok.Wait()
	fail(tok.Error(), "connecting")
	sub := cl.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		messages.Add(1)
		p := m.Payload()
		if len(p) > 0 && p[0] == '[' {
			items.Add(int64(strings.Count(string(p), `"schema"`)))
		} else {
			items.Add(1)
		}
	})
	sub.Wait()
	fail(sub.Error(), "subscribing")
	emit(map[string]any{"event": "subscribed", "filter": filter})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(time.Second)
	for {
		select {
		case <-tick.C:
			emit(map[string]any{"event": "count", "messages": messages.Load(), "readings": items.Load(), "cpu_s": cpuSeconds()})
		case <-stop:
			cl.Disconnect(250)
			emit(map[string]any{"event": "done", "messages": messages.Load(), "readings": items.Load(), "cpu_s": cpuSeconds()})
			return
		}
	}
}

func parseSteps(text string) ([]step, error) {
	var plan []step
	for _, part := range strings.Split(text, ",") {
		rate, seconds, ok := strings.Cut(strings.TrimSpace(part), ":")
		r, err1 := strconv.ParseFloat(rate, 64)
		s, err2 := strconv.ParseFloat(seconds, 64)
		if !ok || err1 != nil || err2 != nil || r <= 0 || s <= 0 {
			return nil, fmt.Errorf("step %q is not rate:seconds with both > 0", part)
		}
		plan = append(plan, step{r, s})
	}
	return plan, nil
}

func snapshot(c *counters) [4]int64 {
	return [4]int64{c.published.Load(), c.acked.Load(), c.failed.Load(), c.behind.Load()}
}

func cpuSeconds() float64 {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return float64(u.Utime.Sec+u.Stime.Sec) + float64(u.Utime.Usec+u.Stime.Usec)/1e6
}

var out = json.NewEncoder(os.Stdout)
var outMu sync.Mutex

func emit(v map[string]any) {
	outMu.Lock()
	defer outMu.Unlock()
	_ = out.Encode(v)
}

func fail(err error, what string) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %s: %v\n", what, err)
		os.Exit(2)
	}
}
