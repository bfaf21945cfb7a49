package main

import (
	"math/rand/v2"
	"strconv"
)

// Syslog severities fakelog uses.
const (
	sevCrit    = 2
	sevErr     = 3
	sevWarning = 4
	sevNotice  = 5
	sevInfo    = 6
	sevDebug   = 7
)

// line is one generated log line: its severity, an RFC 5424 MSGID naming
// its kind, and its text.
type line struct {
	severity uint8
	msgID    string
	text     []byte
}

// generator makes realistic application log lines of mixed severity: web
// requests, database queries, cache lookups, worker jobs, logins, and now
// and then a warning or an error. It reuses one text buffer.
type generator struct {
	r   *rand.Rand
	buf []byte
}

func newGenerator(seed uint64) *generator {
	return &generator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), buf: make([]byte, 0, 256)}
}

var (
	routes    = []string{"GET /", "GET /api/orders", "GET /api/orders/{id}", "POST /api/orders", "GET /api/users/{id}", "PUT /api/users/{id}", "DELETE /api/cart/items/{id}", "POST /api/cart/items", "POST /login", "GET /static/app.js", "GET /healthz", "GET /api/search?q=shoes"}
	statuses  = []int{200, 200, 200, 200, 200, 200, 200, 201, 204, 301, 304, 400, 401, 404, 404, 500, 502}
	tables    = []string{"orders", "users", "carts", "payments", "inventory"}
	queues    = []string{"emails", "invoices", "thumbnails", "webhooks"}
	users     = []string{"alice", "bob", "carol", "dave", "erin", "mallory"}
	jobErrors = []string{"timeout contacting smtp.example.com:587", "connection reset by peer", "invalid image header", "HTTP 503 from https://hooks.example.net/"}
	agents    = []string{"Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "python-requests/2.31", "Go-http-client/1.1"}
)

// next returns the next line; its text is valid until the next call.
func (g *generator) next() line {
	g.buf = g.buf[:0]
	switch k := g.r.IntN(100); {
	case k < 40:
		return g.web()
	case k < 60:
		return g.db()
	case k < 75:
		return g.cache()
	case k < 90:
		return g.job()
	case k < 97:
		return g.auth()
	default:
		return g.system()
	}
}

func (g *generator) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *generator) str(s string) { g.buf = append(g.buf, s...) }

func (g *generator) num(n int) { g.buf = strconv.AppendInt(g.buf, int64(n), 10) }

// ms appends a duration in milliseconds with one decimal.
func (g *generator) ms(tenths int) {
	g.num(tenths / 10)
	g.buf = append(g.buf, '.', byte('0'+tenths%10))
	g.str("ms")
}

// route appends a method and path, with an ID where the route has {id}.
func (g *generator) route() {
	p := g.pick(routes)
	for i := 0; i < len(p); i++ {
		if p[i] == '{' {
			g.num(1000 + g.r.IntN(9000))
			for i < len(p) && p[i] != '}' {
				i++
			}
			continue
		}
		g.buf = append(g.buf, p[i])
	}
}

func (g *generator) web() line {
	status := statuses[g.r.IntN(len(statuses))]
	g.route()
	g.str(" ")
	g.num(status)
	g.str(" ")
	g.ms(5 + g.r.IntN(2500))
	g.str(" ip=10.0.")
	g.num(g.r.IntN(8))
	g.str(".")
	g.num(2 + g.r.IntN(250))
	g.str(` ua="`)
	g.str(g.pick(agents))
	g.str(`"`)
	sev := uint8(sevInfo)
	switch {
	case status >= 500:
		sev = sevErr
	case status >= 400:
		sev = sevWarning
	}
	return line{severity: sev, msgID: "WEB", text: g.buf}
}

func (g *generator) db() line {
	table := g.pick(tables)
	tenths := 3 + g.r.IntN(200)
	slow := g.r.IntN(25) == 0
	if slow {
		tenths = 5000 + g.r.IntN(40000)
		g.str("slow query ")
	} else {
		g.str("query ")
	}
	g.str("table=")
	g.str(table)
	g.str(" rows=")
	g.num(g.r.IntN(120))
	g.str(" took=")
	g.ms(tenths)
	g.str(` sql="SELECT * FROM `)
	g.str(table)
	g.str(` WHERE id = $1"`)
	if slow {
		return line{severity: sevWarning, msgID: "DB", text: g.buf}
	}
	return line{severity: sevDebug, msgID: "DB", text: g.buf}
}

func (g *generator) cache() line {
	if g.r.IntN(4) == 0 {
		g.str("cache miss key=user:")
	} else {
		g.str("cache hit key=user:")
	}
	g.num(g.r.IntN(5000))
	g.str(" ttl=")
	g.num(30 + g.r.IntN(600))
	g.str("s")
	return line{severity: sevDebug, msgID: "CACHE", text: g.buf}
}

func (g *generator) job() line {
	q := g.pick(queues)
	id := 100000 + g.r.IntN(900000)
	if g.r.IntN(12) == 0 {
		g.str("job failed id=")
		g.num(id)
		g.str(" queue=")
		g.str(q)
		g.str(" attempt=")
		g.num(1 + g.r.IntN(5))
		g.str(`/5 error="`)
		g.str(g.pick(jobErrors))
		g.str(`"`)
		return line{severity: sevErr, msgID: "JOB", text: g.buf}
	}
	g.str("job done id=")
	g.num(id)
	g.str(" queue=")
	g.str(q)
	g.str(" took=")
	g.ms(100 + g.r.IntN(30000))
	return line{severity: sevInfo, msgID: "JOB", text: g.buf}
}

func (g *generator) auth() line {
	u := g.pick(users)
	if u == "mallory" || g.r.IntN(10) == 0 {
		g.str("login failed user=")
		g.str(u)
		g.str(" reason=bad_password ip=203.0.113.")
		g.num(1 + g.r.IntN(254))
		return line{severity: sevWarning, msgID: "AUTH", text: g.buf}
	}
	g.str("user logged in user=")
	g.str(u)
	g.str(" method=password")
	return line{severity: sevNotice, msgID: "AUTH", text: g.buf}
}

func (g *generator) system() line {
	switch g.r.IntN(4) {
	case 0:
		g.str("disk usage ")
		g.num(97 + g.r.IntN(3))
		g.str("% on /var/lib/app: writes may fail")
		return line{severity: sevCrit, msgID: "SYS", text: g.buf}
	case 1:
		g.str("connection pool exhausted: 50/50 in use, waited ")
		g.ms(10000 + g.r.IntN(20000))
		return line{severity: sevErr, msgID: "SYS", text: g.buf}
	default:
		g.str("heap ")
		g.num(120 + g.r.IntN(400))
		g.str("MiB goroutines=")
		g.num(40 + g.r.IntN(400))
		g.str(" gc_pause=")
		g.ms(1 + g.r.IntN(40))
		return line{severity: sevInfo, msgID: "SYS", text: g.buf}
	}
}
