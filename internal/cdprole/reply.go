package cdprole

import "encoding/json"

// ErrorReply is scry's CDP error reply to cmd:
// {"id":7,"sessionId":"…","error":{"code":-32000,"message":"…"}}, with the
// id as sent (omitted if cmd had none) and the sessionId only if cmd had
// one, so the client matches it to its pending call.
func ErrorReply(cmd Command, message string) []byte {
	out := make([]byte, 0, 64+len(message)+len(cmd.SessionID))
	out = append(out, '{')
	if len(cmd.ID) > 0 {
		out = append(out, `"id":`...)
		out = append(out, cmd.ID...)
		out = append(out, ',')
	}
	if cmd.SessionID != "" {
		sid, _ := json.Marshal(cmd.SessionID)
		out = append(out, `"sessionId":`...)
		out = append(out, sid...)
		out = append(out, ',')
	}
	msg, _ := json.Marshal(message)
	out = append(out, `"error":{"code":-32000,"message":`...)
	out = append(out, msg...)
	return append(out, "}}"...)
}
