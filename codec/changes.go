package codec

// Changes packets, {"from":"server","type":"changes","data":[ENTRY,...]},
// tell every client who is here. Each entry is written with a trailing
// comma, so entries encoded (and cached) apart can be written one after
// another as they are; the packet's end turns the last comma into "]}".
// Tokens go between quotes as they are: the server's tokens are lowercase
// hex, which JSON needs no escape for.

const (
	changesHead    = `{"from":"server","type":"changes","data":[`
	entryType      = `{"type":"`
	entryToken     = `","token":"`
	openHead       = entryType + "open" + entryToken
	closeHead      = entryType + "close" + entryToken
	metadataHead   = entryType + "metadata" + entryToken
	propertiesHead = entryType + "properties" + entryToken
	propertiesMid  = `","properties":{`
	entryEnd       = `"},`
	welcomeEnd     = `"}]}`
)

// AppendChangesHead starts a changes packet, up to the opening bracket of
// its entries.
func AppendChangesHead(dst []byte) []byte { return append(dst, changesHead...) }

// EndChanges ends a changes packet whose last byte is its last entry's
// comma.
func EndChanges(dst []byte) []byte {
	dst[len(dst)-1] = ']'
	return append(dst, '}')
}

// AppendOpenEntry appends `{"type":"open","token":T},`.
func AppendOpenEntry(dst []byte, token string) []byte {
	dst = append(dst, openHead...)
	dst = append(dst, token...)
	return append(dst, entryEnd...)
}

// OpenEntryLen is the length of what AppendOpenEntry appends, so the entry
// can be kept in a buffer of exactly its size.
func OpenEntryLen(token string) int { return len(openHead) + len(token) + len(entryEnd) }

// AppendCloseEntry appends `{"type":"close","token":T},`.
func AppendCloseEntry(dst []byte, token string) []byte {
	dst = append(dst, closeHead...)
	dst = append(dst, token...)
	return append(dst, entryEnd...)
}

// AppendWelcomeEnd appends `{"type":"metadata","token":T}]}`: the metadata
// entry naming the new client's own token, which a welcome holds once and
// last, and the end of the packet.
func AppendWelcomeEnd(dst []byte, token string) []byte {
	dst = append(dst, metadataHead...)
	dst = append(dst, token...)
	return append(dst, welcomeEnd...)
}

// WelcomeEndLen is the length of what AppendWelcomeEnd appends.
func WelcomeEndLen(token string) int { return len(metadataHead) + len(token) + len(welcomeEnd) }

// A properties entry is written in three steps, so its properties can come
// from wherever the caller keeps them: AppendPropertiesHead, then
// AppendProperty for each (at least one), then EndProperties. All of a
// user's properties make one; so do the keys a user changed (the delta),
// with null for each key deleted.

// AppendPropertiesHead starts `{"type":"properties","token":T,"properties":{`.
func AppendPropertiesHead(dst []byte, token string) []byte {
	dst = append(dst, propertiesHead...)
	dst = append(dst, token...)
	return append(dst, propertiesMid...)
}

// AppendProperty appends `KEY:VALUE,`: key is a JSON string, value compact
// JSON; nil value is written as null, which deletes the key.
func AppendProperty(dst, key, value []byte) []byte {
	dst = append(dst, key...)
	dst = append(dst, ':')
	if value == nil {
		dst = append(dst, null...)
	} else {
		dst = append(dst, value...)
	}
	return append(dst, ',')
}

// EndProperties ends a properties entry after its last AppendProperty: that
// property's comma becomes the object's "}", then the entry's own "},".
func EndProperties(dst []byte) []byte {
	dst[len(dst)-1] = '}'
	return append(dst, "},"...)
}

// PropertyLen is the length of one property as AppendProperty writes it,
// without its comma.
func PropertyLen(key, value []byte) int { return len(key) + 1 + len(value) }

// PropertiesObjectLen is the length of a compact JSON object holding count
// properties whose PropertyLen add up to sum: what the limit on a user's
// properties counts.
func PropertiesObjectLen(count, sum int) int {
	if count == 0 {
		return 2
	}
	return 2 + sum + count - 1
}

// PropertiesEntryLen is the length of a whole properties entry, from
// AppendPropertiesHead to EndProperties, holding count properties whose
// PropertyLen add up to sum (count at least one).
func PropertiesEntryLen(token string, count, sum int) int {
	return len(propertiesHead) + len(token) + len(propertiesMid) + PropertiesObjectLen(count, sum) - 1 + len("},")
}
