package cdprole

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Command is what scry reads of one client message. Only the fields named
// here are ever read out of params; values of other params are never kept
// (they may be typed passwords).
type Command struct {
	ID        json.RawMessage // the id as sent (a JSON number), nil if absent
	Method    string
	SessionID string   // top-level sessionId, "" if none
	TargetID  string   // params.targetId if the method has one (audit)
	URL       string   // params.url of Page.navigate / Target.createTarget (audit and check)
	ToSession string   // params.sessionId of Target.sendMessageToTarget: Chromium's choice over targetId
	Inner     *Command // Target.sendMessageToTarget: the command inside params.message
}

// Peek reads msg's top-level keys exactly as Chrome does: keys are
// case-sensitive and unescaped, a duplicate key at the top level or inside
// params is an error (Chrome and scry could read different values), and
// values scry does not check are skipped, never copied (a Command holds no
// parameter but those named in it, and does not alias msg). On an error the
// Command holds what was read (its ID, if any), so the caller can reply.
func Peek(msg []byte) (Command, error) {
	return peek(msg, true)
}

func peek(msg []byte, outer bool) (Command, error) {
	var cmd Command
	var params []byte
	var haveMethod bool
	err := eachMember(msg, func(key, val []byte) error {
		switch string(key) {
		case "id":
			s := scanner{data: val}
			if val[0] != '-' && (val[0] < '0' || val[0] > '9') {
				return errors.New("id is not a number: want an integer id")
			}
			if integer, _ := s.number(); !integer {
				return errors.New("id is not an integer: want an integer id")
			}
			cmd.ID = append(json.RawMessage(nil), val...) // never aliases msg
		case "method":
			m, ok := checkedString(val)
			if !ok {
				return errors.New("method is not a UTF-8 string")
			}
			cmd.Method, haveMethod = m, true
		case "sessionId":
			sid, ok := checkedString(val)
			if !ok {
				return errors.New("sessionId is not a UTF-8 string")
			}
			cmd.SessionID = sid
		case "params":
			params = val
		}
		return nil
	})
	if err != nil {
		s := scanner{data: msg}
		if c, _ := s.peekByte(); c != '{' {
			return cmd, errors.New("scry: bad CDP command: a command must be a JSON object")
		}
		return cmd, fmt.Errorf("scry: bad CDP command: %w", err)
	}
	if !haveMethod {
		return cmd, errors.New("scry: bad CDP command: no method")
	}
	if params == nil {
		return cmd, nil
	}
	if params[0] != '{' {
		if string(params) == "null" {
			return cmd, nil
		}
		return cmd, errors.New("scry: bad CDP command: params is not an object")
	}
	checked := cmd.Method == "Page.navigate" || cmd.Method == "Target.createTarget" ||
		cmd.Method == "Target.sendMessageToTarget"
	var message []byte
	err = eachMember(params, func(key, val []byte) error {
		var dst *string
		switch string(key) {
		case "url":
			dst = &cmd.URL
		case "targetId":
			dst = &cmd.TargetID
		case "sessionId":
			if cmd.Method != "Target.sendMessageToTarget" {
				return nil
			}
			dst = &cmd.ToSession
		case "message":
			if cmd.Method == "Target.sendMessageToTarget" {
				message = val
			}
			return nil
		default:
			return nil
		}
		v, ok := checkedString(val)
		if !ok {
			if checked {
				return fmt.Errorf("params.%s is not a UTF-8 string", key)
			}
			return nil
		}
		*dst = v
		return nil
	})
	if err != nil {
		return cmd, fmt.Errorf("scry: bad CDP command %s: %w", clip(cmd.Method), err)
	}
	if cmd.Method != "Page.navigate" && cmd.Method != "Target.createTarget" {
		cmd.URL = "" // only these two open a URL; other url params are not kept
	}
	if message == nil {
		return cmd, nil
	}
	inner, ok := checkedString(message)
	if !ok {
		return cmd, errors.New("scry: bad CDP command Target.sendMessageToTarget: params.message is not a UTF-8 string")
	}
	if !outer {
		// A third level is refused by Check; it is not read.
		return cmd, nil
	}
	in, err := peek([]byte(inner), false)
	if err != nil {
		return cmd, fmt.Errorf("scry: bad command inside Target.sendMessageToTarget: %s",
			strings.TrimPrefix(err.Error(), "scry: bad CDP command: "))
	}
	cmd.Inner = &in
	return cmd, nil
}
