package loop

import "time"

// clockStart anchors the loops' clock.
var clockStart = time.Now()

// monotime is the loops' clock: nanoseconds on the monotonic clock since
// the process started, plus one second so that 0 can mean "never".
// Deadlines, idle times and the rate limiter all read it, so a step of the
// wall clock (NTP, an operator's date -s) moves none of them: a step forward
// past the idle timeout would otherwise close every client, a step back
// would stop pings and timeouts for as long as the step.
func monotime() int64 { return int64(time.Since(clockStart)) + int64(time.Second) }
