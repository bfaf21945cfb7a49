package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logviewer/logviewer/internal/testsupport"
)

// No Docker engine runs where these tests run: they check docker-compose.yml
// and the Dockerfile against the code instead. The compose file is read by
// a small line parser for the subset it is written in (two-space block
// mappings and lists, commands as one-line JSON arrays, one merge anchor),
// since no YAML library is in the module graph.

// composeService is what the tests need of one service.
type composeService struct {
	name       string
	image      string
	build      bool
	entrypoint []string
	command    []string
	profiles   []string
	ports      []string
	volumes    []string
	dependsOn  []string
}

// parseCompose reads the services of a compose file written in the subset
// described above; anything outside it is an error, so the test fails
// instead of checking less than it claims.
func parseCompose(text string) (map[string]*composeService, error) {
	anchors := map[string]*composeService{}
	services := map[string]*composeService{}
	var (
		top      string          // current top-level key
		anchor   *composeService // current x- anchor body
		svc      *composeService
		key      string // current service key whose list items follow
		blockInd = -1   // indentation of a block scalar being skipped
	)
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		ind := len(line) - len(strings.TrimLeft(line, " "))
		if blockInd >= 0 {
			if trimmed == "" || ind > blockInd {
				continue
			}
			blockInd = -1
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.ContainsRune(line, '\t') {
			return nil, errors.New("line " + strconv.Itoa(n) + ": tab character")
		}
		if ind%2 != 0 {
			return nil, errors.New("line " + strconv.Itoa(n) + ": odd indentation")
		}
		k, v, isKey := strings.Cut(trimmed, ":")
		if strings.HasPrefix(trimmed, "- ") {
			isKey = false
		}
		v = strings.TrimSpace(v)
		switch {
		case ind == 0:
			top, svc, anchor, key = k, nil, nil, ""
			if strings.HasPrefix(v, "&") {
				anchor = &composeService{}
				anchors[v[1:]] = anchor
			}
		case top == "services" && ind == 2:
			if !isKey || v != "" {
				return nil, errors.New("line " + strconv.Itoa(n) + ": want a service name")
			}
			svc = &composeService{name: k}
			services[k] = svc
			key = ""
		case anchor != nil && ind == 2 && isKey:
			if err := setField(anchor, k, v); err != nil {
				return nil, errors.New("line " + strconv.Itoa(n) + ": " + err.Error())
			}
		case svc != nil && ind == 4 && isKey:
			key = k
			if k == "<<" {
				a, ok := anchors[strings.TrimPrefix(v, "*")]
				if !ok {
					return nil, errors.New("line " + strconv.Itoa(n) + ": unknown anchor " + v)
				}
				svc.image, svc.build = a.image, a.build
				continue
			}
			if v == "|" {
				blockInd = ind
				continue
			}
			if err := setField(svc, k, v); err != nil {
				return nil, errors.New("line " + strconv.Itoa(n) + ": " + err.Error())
			}
		case svc != nil && ind == 6 && strings.HasPrefix(trimmed, "- "):
			item := strings.Trim(strings.TrimPrefix(trimmed, "- "), `"`)
			switch key {
			case "ports":
				svc.ports = append(svc.ports, item)
			case "volumes":
				svc.volumes = append(svc.volumes, item)
			case "depends_on":
				svc.dependsOn = append(svc.dependsOn, item)
			default:
				return nil, errors.New("line " + strconv.Itoa(n) + ": list under " + key)
			}
		case svc != nil && ind == 6 && key == "depends_on" && isKey && v == "":
			svc.dependsOn = append(svc.dependsOn, k)
		case svc != nil && ind >= 6:
			if isKey && v == "|" {
				blockInd = ind
			}
			// nested mappings (healthcheck, build, depends_on conditions)
		case top != "services" && anchor == nil:
			// other top-level keys (name)
		default:
			return nil, errors.New("line " + strconv.Itoa(n) + ": unexpected " + strconv.Quote(line))
		}
	}
	return services, sc.Err()
}

func setField(s *composeService, k, v string) error {
	list := func(dst *[]string) error {
		if err := json.Unmarshal([]byte(v), dst); err != nil {
			return errors.New(k + ": want a one-line JSON array: " + err.Error())
		}
		return nil
	}
	switch k {
	case "image":
		s.image = v
	case "build":
		s.build = true
	case "entrypoint":
		return list(&s.entrypoint)
	case "command":
		return list(&s.command)
	case "profiles":
		return list(&s.profiles)
	}
	return nil
}

// flagValue returns the value of --name in args ("--name v" or "--name=v").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// withFlag returns args with --name set to v (replaced, or appended).
func withFlag(args []string, name, v string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if strings.TrimLeft(a, "-") == name && i+1 < len(out) {
			out[i+1] = v
			return out
		}
		if strings.HasPrefix(strings.TrimLeft(a, "-"), name+"=") {
			out[i] = "--" + name + "=" + v
			return out
		}
	}
	return append(out, "--"+name, v)
}

// withoutFlags drops --name value pairs of the given names from args.
func withoutFlags(args []string, names ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		name, _, hasEq := strings.Cut(a, "=")
		if strings.HasPrefix(args[i], "-") && slices.Contains(names, name) {
			if !hasEq {
				i++
			}
			continue
		}
		out = append(out, args[i])
	}
	return out
}

var usageFlag = regexp.MustCompile(`(?m)^\s+-([A-Za-z0-9][A-Za-z0-9-]*)`)

// usage runs bin -h and returns its flags and each flag's usage text.
func usage(t *testing.T, bin string) map[string]string {
	t.Helper()
	out, err := exec.Command(bin, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -h: %v\n%s", bin, err, out)
	}
	flags := map[string]string{}
	locs := usageFlag.FindAllStringSubmatchIndex(string(out), -1)
	for i, l := range locs {
		end := len(out)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		flags[string(out[l[2]:l[3]])] = string(out[l[1]:end])
	}
	if len(flags) == 0 {
		t.Fatalf("%s -h lists no flags:\n%s", bin, out)
	}
	return flags
}

// defaultPort reads the port of a flag's default address from its usage
// text (`(default ":10514")`).
func defaultPort(t *testing.T, flags map[string]string, name string) string {
	t.Helper()
	m := regexp.MustCompile(`\(default "[^"]*:(\d+)"\)`).FindStringSubmatch(flags[name])
	if m == nil {
		t.Fatalf("no default address in the usage of --%s: %q", name, flags[name])
	}
	return m[1]
}

// containerPorts returns the container side of each "host:container/proto".
func containerPorts(ports []string) map[string]bool {
	out := map[string]bool{}
	for _, p := range ports {
		parts := strings.Split(p, ":")
		out[parts[len(parts)-1]] = true
	}
	return out
}

func readComposeFiles(t *testing.T) (map[string]*composeService, string) {
	t.Helper()
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	services, err := parseCompose(string(raw))
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	return services, string(df)
}

// TestComposeFile checks docker-compose.yml and the Dockerfile against the
// code: services, the programs and flags they run, ports, the rsyslog
// config they mount. It cannot start containers: no Docker engine here.
func TestComposeFile(t *testing.T) {
	services, dockerfile := readComposeFiles(t)

	t.Run("services", func(t *testing.T) {
		for _, name := range []string{"redis", "logviewer-ingest", "logviewer-stream", "fakelog_a", "fakelog_b", "rsyslog"} {
			if services[name] == nil {
				t.Errorf("no service %q", name)
			}
		}
		for name, s := range services {
			wantProfile := name == "rsyslog" || name == "fakelog_rsyslog"
			if got := slices.Contains(s.profiles, "rsyslog"); got != wantProfile {
				t.Errorf("service %s: profiles %v, want rsyslog profile %v", name, s.profiles, wantProfile)
			}
			for _, dep := range s.dependsOn {
				if services[dep] == nil {
					t.Errorf("service %s depends on unknown service %q", name, dep)
				}
			}
			if s.image == "" {
				t.Errorf("service %s has no image", name)
			}
		}
	})

	t.Run("dockerfile", func(t *testing.T) {
		goMod, err := os.ReadFile("../go.mod")
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
		if m == nil || !strings.Contains(dockerfile, "FROM golang:"+string(m[1])+" AS build") {
			t.Errorf("Dockerfile does not build with golang:%s (go.mod's go version)", m[1])
		}
		for _, prog := range []string{"logviewer", "fakelog"} {
			if !strings.Contains(dockerfile, "-o /out/"+prog+" ./cmd/"+prog) {
				t.Errorf("Dockerfile does not build ./cmd/%s", prog)
			}
			if _, err := os.Stat(filepath.Join("..", "cmd", prog, "main.go")); err != nil {
				t.Errorf("cmd/%s: %v", prog, err)
			}
		}
		if !strings.Contains(dockerfile, "CGO_ENABLED=0") || !strings.Contains(dockerfile, "FROM scratch") {
			t.Errorf("Dockerfile: want a static (CGO_ENABLED=0) binary on scratch")
		}
		if !strings.Contains(dockerfile, "COPY --from=build /out/logviewer /out/fakelog /usr/local/bin/") ||
			!strings.Contains(dockerfile, `ENTRYPOINT ["/usr/local/bin/logviewer"]`) {
			t.Errorf("Dockerfile: binaries not in /usr/local/bin or entrypoint not logviewer")
		}
	})

	// Every service built from the Dockerfile runs one of our programs with
	// flags that program has.
	programs := map[string]map[string]string{} // program -> flags and usage
	for name, s := range services {
		if !s.build || s.image != "logviewer:dev" {
			continue
		}
		prog := "logviewer"
		if len(s.entrypoint) > 0 {
			if len(s.entrypoint) != 1 || !strings.HasPrefix(s.entrypoint[0], "/usr/local/bin/") {
				t.Errorf("service %s: entrypoint %v, want one program in /usr/local/bin", name, s.entrypoint)
				continue
			}
			prog = strings.TrimPrefix(s.entrypoint[0], "/usr/local/bin/")
		}
		if _, err := os.Stat(filepath.Join("..", "cmd", prog)); err != nil {
			t.Errorf("service %s runs %s: no cmd/%s", name, prog, prog)
			continue
		}
		if programs[prog] == nil {
			programs[prog] = usage(t, testsupport.Binary(t, prog))
		}
		for _, a := range s.command {
			if !strings.HasPrefix(a, "-") {
				continue
			}
			flag, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if _, ok := programs[prog][flag]; !ok {
				t.Errorf("service %s: %s has no flag --%s", name, prog, flag)
			}
		}
	}
	if programs["logviewer"] == nil || programs["fakelog"] == nil {
		t.Fatalf("compose runs programs %v, want logviewer and fakelog", programs)
	}

	t.Run("ports", func(t *testing.T) {
		lv := programs["logviewer"]
		syslogPort, httpPort := defaultPort(t, lv, "syslog-addr"), defaultPort(t, lv, "http-addr")
		ingest, stream := services["logviewer-ingest"], services["logviewer-stream"]
		if v, _ := flagValue(ingest.command, "syslog-addr"); v != ":"+syslogPort {
			t.Errorf("ingest --syslog-addr %q, want the default :%s", v, syslogPort)
		}
		for _, p := range []string{syslogPort + "/tcp", syslogPort + "/udp"} {
			if !containerPorts(ingest.ports)[p] {
				t.Errorf("ingest publishes %v, not container port %s", ingest.ports, p)
			}
		}
		if v, _ := flagValue(stream.command, "http-addr"); v != ":"+httpPort {
			t.Errorf("stream --http-addr %q, want the default :%s", v, httpPort)
		}
		if !containerPorts(stream.ports)[httpPort+"/tcp"] {
			t.Errorf("stream publishes %v, not container port %s/tcp", stream.ports, httpPort)
		}
		for _, s := range []*composeService{ingest, stream} {
			url, _ := flagValue(s.command, "redis")
			if url != "redis://redis:6379/0" || services["redis"] == nil {
				t.Errorf("service %s: --redis %q, want redis://redis:6379/0 (the redis service, its default port)", s.name, url)
			}
			if role, _ := flagValue(s.command, "role"); "logviewer-"+role != s.name {
				t.Errorf("service %s runs --role %q", s.name, role)
			}
		}
		// Each app logs to a service's syslog port.
		rsyslogConfPort := confParam(t, "port")
		for name, s := range services {
			if len(s.entrypoint) == 0 || !strings.HasSuffix(s.entrypoint[0], "/fakelog") {
				continue
			}
			addr, _ := flagValue(s.command, "addr")
			host, port, err := net.SplitHostPort(addr)
			target := services[host]
			switch {
			case err != nil || target == nil:
				t.Errorf("service %s: --addr %q is not a service's host:port", name, addr)
			case host == "rsyslog" && port != rsyslogConfPort:
				t.Errorf("service %s: --addr %q, rsyslog listens on %s", name, addr, rsyslogConfPort)
			case host != "rsyslog" && port != syslogPort:
				t.Errorf("service %s: --addr %q, logviewer listens on %s", name, addr, syslogPort)
			case !slices.Contains(s.dependsOn, host):
				t.Errorf("service %s logs to %s but does not depend on it", name, host)
			}
		}
		if rs := services["rsyslog"]; !containerPorts(rs.ports)[rsyslogConfPort+"/tcp"] || !containerPorts(rs.ports)[rsyslogConfPort+"/udp"] {
			t.Errorf("rsyslog publishes %v, want container port %s tcp and udp", rs.ports, rsyslogConfPort)
		}
	})

	t.Run("rsyslog", func(t *testing.T) {
		rs := services["rsyslog"]
		if !slices.Contains(rs.volumes, "./deploy/rsyslog:/etc/logviewer:ro") {
			t.Fatalf("rsyslog volumes %v, want ./deploy/rsyslog mounted at /etc/logviewer", rs.volumes)
		}
		script := strings.Join(rs.command, " ")
		const from, to = `server="127.0.0.1"`, `server="redis"`
		if !strings.Contains(script, `s/`+from+`/`+to+`/`) || !strings.Contains(script, "/etc/logviewer/logviewer.conf") {
			t.Fatalf("rsyslog command %q does not point the config at the redis service", script)
		}
		raw, err := os.ReadFile(rsyslogConf)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), from) {
			t.Fatalf("%s has no %s for the compose command to rewrite", rsyslogConf, from)
		}
		// The rewritten config is what the container runs: rsyslogd must accept it.
		bin := testsupport.RequireBinary(t, "rsyslogd", "/usr/sbin/rsyslogd")
		dir := t.TempDir()
		conf := filepath.Join(dir, "logviewer.conf")
		text := "global(workDirectory=\"" + dir + "\")\n" + strings.ReplaceAll(string(raw), from, to)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "-N1", "-f", conf).CombinedOutput(); err != nil || strings.Contains(strings.ToLower(string(out)), "error") {
			t.Fatalf("rsyslogd -N1 on the compose config: %v\n%s", err, out)
		}
	})

	t.Run("docker compose config", func(t *testing.T) {
		docker, err := exec.LookPath("docker")
		if err != nil || exec.Command(docker, "compose", "version").Run() != nil {
			t.Log("docker compose is not installed here: the file was checked by the line parser only")
			return
		}
		for _, args := range [][]string{{"compose", "config", "-q"}, {"compose", "--profile", "rsyslog", "config", "-q"}} {
			cmd := exec.Command(docker, args...)
			cmd.Dir = ".."
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("docker %v: %v\n%s", args, err, out)
			}
		}
	})
}

// confParam returns the value of the first name="..." in the rsyslog config.
func confParam(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(rsyslogConf)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^[^#]*[^A-Za-z0-9._]` + name + `="([^"]*)"`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("%s: no %s=", rsyslogConf, name)
	}
	return string(m[1])
}

// TestComposeCommandsRun runs each compose command of our programs for real,
// with only the addresses moved to loopback: the fakelog apps deliver lines,
// and the logviewer nodes start against a real Redis.
func TestComposeCommandsRun(t *testing.T) {
	services, _ := readComposeFiles(t)
	t.Run("fakelog", func(t *testing.T) {
		bin := testsupport.Binary(t, "fakelog")
		for name, s := range services {
			if len(s.entrypoint) == 0 || !strings.HasSuffix(s.entrypoint[0], "/fakelog") {
				continue
			}
			t.Run(name, func(t *testing.T) {
				proto, _ := flagValue(s.command, "proto")
				got := make(chan string, 16)
				addr := listenLines(t, proto, got)
				args := withFlag(withFlag(withFlag(s.command, "addr", addr), "count", "3"), "rate", "1000")
				if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
					t.Fatalf("fakelog %v: %v\n%s", args, err, out)
				}
				for i := 0; i < 3; i++ {
					select {
					case l := <-got:
						app, _ := flagValue(s.command, "app")
						if !strings.Contains(l, app) {
							t.Errorf("line %q does not name the app %q", l, app)
						}
					case <-time.After(recordTimeout):
						t.Fatalf("line %d of 3 did not arrive", i+1)
					}
				}
			})
		}
	})
	t.Run("logviewer", func(t *testing.T) {
		r := testsupport.StartRedis(t)
		for _, name := range []string{"logviewer-ingest", "logviewer-stream"} {
			t.Run(name, func(t *testing.T) {
				args := withoutFlags(services[name].command, "syslog-addr", "http-addr")
				args = withFlag(args, "redis", r.URL())
				testsupport.StartDaemon(t, args...).Stop(t)
			})
		}
		t.Run("logviewer", func(t *testing.T) {
			args := withoutFlags(services["logviewer"].command, "syslog-addr", "http-addr")
			if dir, _ := flagValue(args, "data-dir"); !slices.Contains(services["logviewer"].volumes, "logviewer-data:"+dir) {
				t.Errorf("--data-dir %q is not the service's volume %v", dir, services["logviewer"].volumes)
			}
			args = withFlag(args, "data-dir", t.TempDir())
			testsupport.StartDaemon(t, args...).Stop(t)
		})
	})
}

// listenLines receives syslog on a loopback port and sends every received
// chunk of text (a datagram, or what one TCP read returned) to got.
func listenLines(t *testing.T, proto string, got chan<- string) string {
	t.Helper()
	if proto == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 65536)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				got <- string(buf[:n])
			}
		}()
		return pc.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sc := bufio.NewScanner(c)
		sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
			for i, b := range data {
				if b == '\n' || b == 0 {
					return i + 1, data[:i], nil
				}
			}
			if atEOF && len(data) > 0 {
				return len(data), data, nil
			}
			return 0, nil, nil
		})
		for sc.Scan() {
			got <- sc.Text()
		}
	}()
	return l.Addr().String()
}

// TestParseCompose: the line parser reads the subset it claims and refuses
// what it cannot read, so TestComposeFile never checks less than it says.
func TestParseCompose(t *testing.T) {
	const good = `name: x
x-img: &img
  build: .
  image: app:dev
services:
  a:
    <<: *img
    entrypoint: ["/usr/local/bin/fakelog"]
    command: ["--addr", "b:1", "--x=2"]
    ports:
      - "1:1/tcp"
    depends_on:
      - b
  b:
    image: redis:7
    build:
      context: d
      dockerfile_inline: |
        FROM debian
        RUN true
    profiles: ["p"]
    depends_on:
      c:
        condition: service_healthy
`
	s, err := parseCompose(good)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s["a"], s["b"]
	if a == nil || b == nil || len(s) != 2 {
		t.Fatalf("services %v", s)
	}
	if a.image != "app:dev" || !a.build || a.entrypoint[0] != "/usr/local/bin/fakelog" ||
		strings.Join(a.command, " ") != "--addr b:1 --x=2" || a.ports[0] != "1:1/tcp" || a.dependsOn[0] != "b" {
		t.Errorf("service a: %+v", a)
	}
	if b.image != "redis:7" || !b.build || b.profiles[0] != "p" || b.dependsOn[0] != "c" {
		t.Errorf("service b: %+v", b)
	}
	if v, ok := flagValue(a.command, "x"); !ok || v != "2" {
		t.Errorf("flagValue x = %q %v", v, ok)
	}
	if got := withoutFlags([]string{"--a", "1", "--b=2", "--c", "3"}, "a", "b"); strings.Join(got, " ") != "--c 3" {
		t.Errorf("withoutFlags: %v", got)
	}

	bad := []struct{ name, text string }{
		{"tab", "services:\n  a:\n\timage: x\n"},
		{"odd indent", "services:\n   a:\n"},
		{"command not JSON", "services:\n  a:\n    command: --role ingest\n"},
		{"unknown anchor", "services:\n  a:\n    <<: *nope\n"},
		{"list under unknown key", "services:\n  a:\n    cap_add:\n      - NET_ADMIN\n"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := parseCompose(tc.text); err == nil {
				t.Fatalf("parsed %q as %v, want an error", tc.text, s)
			}
		})
	}
}

// TestPythonExample runs examples/python/app.py against the daemon, over
// UDP and TCP, and checks what its README says arrives.
func TestPythonExample(t *testing.T) {
	py := testsupport.RequireBinary(t, "python3")
	d := testsupport.StartDaemon(t)
	sse := testsupport.OpenSSE(t, d.HTTPURL+"/sse/*")
	host, port, _ := net.SplitHostPort(d.SyslogAddr)
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			args := []string{"../examples/python/app.py", "--host", host, "--port", port}
			if proto == "tcp" {
				args = append(args, "--tcp")
			}
			if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
				t.Fatalf("python3 %v: %v\n%s", args, err, out)
			}
			want := []struct {
				msg   string
				level float64
			}{
				{"cache warm: 1200 keys", 7},
				{"order 4711 paid: 3 items, 59.90 EUR", 6},
				{"payment provider slow: 2.3 s", 4},
				{"could not compute the discount", 3},
			}
			for _, w := range want {
				f := sse.NextRecord(t, recordTimeout).Fields(t)
				msg, _ := f["short_message"].(string)
				if !strings.HasPrefix(msg, w.msg) || f["level"] != w.level || f["_app"] != "shop" {
					t.Fatalf("got %v, want short_message %q level %v _app shop", f, w.msg, w.level)
				}
				if w.level == 3 {
					// Over UDP and TCP alike the traceback stays in the record.
					if !strings.Contains(msg, "\nTraceback (most recent call last):\n") || !strings.HasSuffix(msg, "ZeroDivisionError: division by zero") {
						t.Errorf("%s: the record does not hold the whole traceback: %q", proto, msg)
					}
				}
			}
		})
	}
}
