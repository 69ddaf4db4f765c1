package codec

// Error codes of Protocol V2 error packets.
const (
	CodeBadJSON         = "bad_json"
	CodeBadPacket       = "bad_packet"
	CodeReservedType    = "reserved_type"
	CodeUnknownType     = "unknown_type"
	CodeBadProperties   = "bad_properties"
	CodePropertiesLimit = "properties_limit"
	CodeRateLimited     = "rate_limited"
)

// PacketError is why a client packet was refused, by ParsePacket or by the
// server's rules for what it asks (a properties change over a limit); the
// sender gets it as an error packet and the connection stays open.
type PacketError struct{ Code, Message string }

func (e *PacketError) Error() string { return e.Code + ": " + e.Message }
