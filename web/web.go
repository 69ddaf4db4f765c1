// Package web is the hangoutd demo page: one HTML document that
// speaks Protocol V2 through the browser's own WebSocket.
//
// The server answers a GET on any room's path (/ or /NAME) with this same
// page, and the page joins the room its own URL names, so one document
// serves every room. The sources stay three plain files (index.html,
// style.css, app.js) with no build step. At init they are joined into one
// document, because a page is the only thing the server serves: the
// stylesheet and the script are inlined, and the Content-Security-Policy
// allows exactly those two by their SHA-256 hash (no 'unsafe-inline', nothing
// from elsewhere), and WebSocket connections.
//
// Concurrency: every response is built once during package init and is
// read-only afterwards, so any goroutine (each event loop) may call Page,
// NotFound and UpgradeRequired and write what they return. Nobody may modify
// the returned bytes.
package web

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

var (
	//go:embed index.html
	indexHTML []byte
	//go:embed style.css
	styleCSS []byte
	//go:embed app.js
	appJS []byte
)

// The tags in index.html that init replaces by the inlined files. They keep
// index.html usable on its own (opened from disk next to its two files).
const (
	styleLink = `<link rel="stylesheet" href="style.css">`
	scriptTag = `<script src="app.js"></script>`
)

var (
	page            []byte
	notFound        []byte
	upgradeRequired []byte
)

func init() {
	doc, csp, err := inline(indexHTML, styleCSS, appJS)
	if err != nil {
		// The files are compiled in, so this is a bug caught by any test run.
		panic("web: " + err.Error())
	}
	page = response("200 OK", "text/html; charset=utf-8", doc,
		"Cache-Control: no-cache",
		"Content-Security-Policy: "+csp,
		"Referrer-Policy: no-referrer",
	)
	notFound = response("404 Not Found", "text/plain; charset=utf-8",
		[]byte("not found: this port serves WebSocket (and the demo page) on a room's path: / or /NAME\n"))
	// RFC 9110 asks a 426 to name the protocol in Upgrade, and Upgrade must be
	// listed in Connection; RFC 6455 asks for the version the server speaks.
	upgradeRequired = response("426 Upgrade Required", "text/plain; charset=utf-8",
		[]byte("upgrade required: this port speaks WebSocket (version 13)\n"),
		"Upgrade: websocket",
		"Sec-WebSocket-Version: 13",
		"Connection: Upgrade, close",
	)
}

// Page returns the complete HTTP/1.1 200 response carrying the demo page,
// headers and body, for the server to write before it closes the connection.
func Page() []byte { return page }

// NotFound returns a complete HTTP/1.1 404 response with a one-line body and
// Connection: close.
func NotFound() []byte { return notFound }

// UpgradeRequired returns a complete HTTP/1.1 426 response that names
// WebSocket version 13, for a plain request on a room's path when the demo
// is off.
func UpgradeRequired() []byte { return upgradeRequired }

// inline puts css and js into html in place of styleLink and scriptTag, and
// returns the document and a Content-Security-Policy that allows those two
// blocks by hash.
func inline(html, css, js []byte) (doc []byte, csp string, err error) {
	if bytes.Contains(bytes.ToLower(css), []byte("</style")) {
		return nil, "", fmt.Errorf("style.css contains </style")
	}
	if bytes.Contains(bytes.ToLower(js), []byte("</script")) {
		return nil, "", fmt.Errorf("app.js contains </script")
	}
	for _, tag := range []string{styleLink, scriptTag} {
		if n := bytes.Count(html, []byte(tag)); n != 1 {
			return nil, "", fmt.Errorf("index.html has %s %d times, want once", tag, n)
		}
	}
	doc = bytes.Replace(html, []byte(styleLink), concat("<style>", css, "</style>"), 1)
	doc = bytes.Replace(doc, []byte(scriptTag), concat("<script>", js, "</script>"), 1)
	csp = "default-src 'none'" +
		"; script-src " + hashSource(js) +
		"; style-src " + hashSource(css) +
		"; connect-src 'self' ws: wss:" +
		"; img-src data:" +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return doc, csp, nil
}

func concat(open string, body []byte, end string) []byte {
	b := make([]byte, 0, len(open)+len(body)+len(end))
	b = append(b, open...)
	b = append(b, body...)
	return append(b, end...)
}

// hashSource is a CSP source expression for exactly this inline block.
func hashSource(b []byte) string {
	sum := sha256.Sum256(b)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// response builds a whole HTTP/1.1 response that ends the connection. extra
// header lines may replace the default Connection: close.
func response(status, contentType string, body []byte, extra ...string) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + status + "\r\n")
	b.WriteString("Content-Type: " + contentType + "\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	b.WriteString("X-Content-Type-Options: nosniff\r\n")
	hasConnection := false
	for _, h := range extra {
		hasConnection = hasConnection || strings.HasPrefix(h, "Connection:")
		b.WriteString(h + "\r\n")
	}
	if !hasConnection {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}
