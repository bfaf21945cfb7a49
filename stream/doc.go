// Package stream serves records from the bus over HTTP: WebSocket and
// Server-Sent Events per channel, the channel list, health, metrics and the
// embedded browser viewer. It never imports ingest.
package stream
