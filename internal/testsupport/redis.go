package testsupport

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server started for one test, on a free loopback port
// with its own work directory and no persistence.
type Redis struct {
	bin      string
	dir      string
	port     int
	tls      *redisTLS // nil: plain TCP
	password string    // requirepass, "" for none
	extra    []string  // more redis-server arguments

	mu     sync.Mutex
	cmd    *exec.Cmd
	out    *LockedBuffer
	exited chan struct{}
}

// StartRedis starts redis-server on a free 127.0.0.1 port, waits until it
// answers PING, and stops it when the test ends.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	return StartRedisWith(tb, RedisOptions{})
}

// RedisOptions are what a test's redis-server asks of its clients.
type RedisOptions struct {
	// TLS makes the server speak TLS only, with a certificate for 127.0.0.1
	// signed by a CA made for the test (see CAFile); it asks clients for no
	// certificate.
	TLS bool
	// Password is the server's requirepass ("": none).
	Password string
}

// StartRedisWith is StartRedis with opts.
func StartRedisWith(tb testing.TB, opts RedisOptions) *Redis {
	tb.Helper()
	r := &Redis{
		bin:      RequireBinary(tb, "redis-server"),
		dir:      tb.TempDir(),
		port:     FreePort(tb),
		password: opts.Password,
	}
	if opts.TLS {
		r.tls = newRedisTLS(tb, r.dir)
	}
	r.Start(tb)
	tb.Cleanup(func() { r.stop() })
	return r
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// URL is the server's URL, database 0: rediss:// when it speaks TLS, with
// the password when it has one.
func (r *Redis) URL() string { return r.URLWithPassword(r.password) }

// URLWithPassword is URL with another password ("": none).
func (r *Redis) URLWithPassword(password string) string {
	u := url.URL{Scheme: "redis", Host: r.Addr(), Path: "/0"}
	if r.tls != nil {
		u.Scheme = "rediss"
	}
	if password != "" {
		u.User = url.UserPassword("", password)
	}
	return u.String()
}

// CAFile is the PEM file of the CA that signed a TLS server's certificate
// ("" for a plain server): what a client must trust, e.g. as SSL_CERT_FILE.
func (r *Redis) CAFile() string {
	if r.tls == nil {
		return ""
	}
	return r.tls.caFile
}

// options are the go-redis options of a client of this server.
func (r *Redis) options() *redis.Options {
	o := &redis.Options{Addr: r.Addr(), Password: r.password}
	if r.tls != nil {
		o.TLSConfig = &tls.Config{RootCAs: r.tls.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	return o
}

// Start starts the server (again) on the same port; after Stop it comes back
// empty, as a Redis without persistence does after a restart.
func (r *Redis) Start(tb testing.TB) {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		tb.Fatalf("redis-server on %s: already running", r.Addr())
	}
	args := []string{"--port", strconv.Itoa(r.port)}
	if r.tls != nil {
		args = []string{"--port", "0", "--tls-port", strconv.Itoa(r.port),
			"--tls-cert-file", r.tls.certFile, "--tls-key-file", r.tls.keyFile,
			"--tls-ca-cert-file", r.tls.caFile, "--tls-auth-clients", "no"}
	}
	if r.password != "" {
		args = append(args, "--requirepass", r.password)
	}
	args = append(args, r.extra...)
	cmd := exec.Command(r.bin, append(args,
		"--bind", "127.0.0.1",
		"--dir", r.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--protected-mode", "no",
		"--loglevel", "warning",
	)...)
	out := &LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	r.cmd, r.out, r.exited = cmd, out, exited

	o := r.options()
	o.MaxRetries, o.DialTimeout = -1, 200*time.Millisecond
	c := redis.NewClient(o)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-exited:
			tb.Fatalf("redis-server on %s exited at start: %s", r.Addr(), out.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redis-server on %s: no PONG after 10s: %v\n%s", r.Addr(), err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits until it is gone and its port is free.
func (r *Redis) Stop(tb testing.TB) {
	tb.Helper()
	if err := r.stop(); err != nil {
		tb.Fatalf("stop redis-server on %s: %v", r.Addr(), err)
	}
}

func (r *Redis) stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return nil
	}
	r.cmd.Process.Kill()
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("pid %d did not exit", r.cmd.Process.Pid)
	}
	r.cmd = nil
	return nil
}

// Client returns a go-redis client for the server, closed when the test
// ends.
func (r *Redis) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(r.options())
	tb.Cleanup(func() { c.Close() })
	return c
}

// Signal sends sig to the running server (SIGSTOP makes a Redis that
// accepts connections but answers nothing, SIGCONT ends that).
func (r *Redis) Signal(tb testing.TB, sig os.Signal) {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		tb.Fatalf("redis-server on %s: not running", r.Addr())
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("redis-server on %s: signal %v: %v", r.Addr(), sig, err)
	}
}
