package handoff

import (
	"fmt"
	"strings"
	"time"
)

// Notification is the webhook's body for an event: Slack's and
// Mattermost's incoming webhooks take it as it is (they read "text").
type Notification struct {
	Event   string `json:"event"`
	Handoff View   `json:"handoff"`
	Text    string `json:"text"`
}

// slackEscape escapes what Slack's text reads as markup.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// NewNotification builds the webhook body for ev. Only the created event
// carries the link.
func NewNotification(ev Event) Notification {
	v := ev.Handoff
	reason := slackEscape.Replace(v.Reason)
	var text string
	switch ev.Name {
	case "handoff.created":
		text = fmt.Sprintf("scry: an agent asks for a person: %s. Open %s before %s.",
			strings.TrimRight(reason, "."), v.URL, v.ExpiresAt.UTC().Format("15:04 UTC, Jan 2"))
	case "handoff.active":
		text = fmt.Sprintf("scry: a person opened handoff %s (%s).", v.ID, reason)
	case "handoff.done":
		text = fmt.Sprintf("scry: handoff %s is done (%s).", v.ID, reason)
	case "handoff.expired":
		text = fmt.Sprintf("scry: handoff %s expired after %s with nobody done (%s).", v.ID,
			v.ExpiresAt.Sub(v.CreatedAt).Round(time.Second), reason)
	case "handoff.cancelled":
		text = fmt.Sprintf("scry: handoff %s was withdrawn by the agent (%s).", v.ID, reason)
	default:
		text = fmt.Sprintf("scry: %s %s (%s).", ev.Name, v.ID, reason)
	}
	return Notification{Event: ev.Name, Handoff: v, Text: text}
}
