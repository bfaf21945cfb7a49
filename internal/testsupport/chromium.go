package testsupport

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// StartChromium starts a headless Chromium (Debian's chromium, found with
// RequireBinary) with a fresh profile and returns a chromedp context for its
// first tab. The browser is started before StartChromium returns, so callers
// may derive timeouts from the context for single actions. It stops when
// the test ends.
func StartChromium(tb testing.TB) context.Context {
	tb.Helper()
	bin := RequireBinary(tb, "chromium", "chromium-browser")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		// Smooth scrolling animates over frames a busy machine may not draw
		// in time; tests assert where the page is, not how it got there.
		chromedp.Flag("disable-smooth-scrolling", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", false),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(tb.Logf))
	tb.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})

	// The first Run starts the browser and binds it to ctx, so it runs
	// without a timeout; a watchdog turns a browser that never answers into
	// a test failure instead of a hang.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			tb.Fatalf("start chromium %s: %v", bin, err)
		}
	case <-time.After(60 * time.Second):
		cancelCtx()
		cancelAlloc()
		tb.Fatalf("start chromium %s: no answer within 60s", bin)
	}
	return ctx
}
