package handoff

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// DevTools is a Browser that speaks to Chromium's loopback DevTools HTTP
// endpoints (/json/list, /json/new, /json/activate).
type DevTools struct {
	// Addr is Chromium's loopback DevTools address, "127.0.0.1:9223".
	Addr   string
	Client *http.Client
}

func (d *DevTools) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+d.Addr+path, nil)
	if err != nil {
		return err
	}
	c := d.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chromium answered %s: %.200s", resp.Status, body)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// HasTarget reports whether Chromium has a target with this id.
func (d *DevTools) HasTarget(ctx context.Context, targetID string) (bool, error) {
	var list []struct {
		ID string `json:"id"`
	}
	if err := d.do(ctx, http.MethodGet, "/json/list", &list); err != nil {
		return false, err
	}
	for _, t := range list {
		if t.ID == targetID {
			return true, nil
		}
	}
	return false, nil
}

// NewTab opens u in a new tab and returns its target id.
func (d *DevTools) NewTab(ctx context.Context, u string) (string, error) {
	var t struct {
		ID string `json:"id"`
	}
	// Chromium reads /json/new's query raw, up to the first '&', and
	// unescapes it: escape the whole URL.
	if err := d.do(ctx, http.MethodPut, "/json/new?"+url.QueryEscape(u), &t); err != nil {
		return "", err
	}
	return t.ID, nil
}

// Activate brings a target's tab to the front.
func (d *DevTools) Activate(ctx context.Context, targetID string) error {
	return d.do(ctx, http.MethodGet, "/json/activate/"+url.PathEscape(targetID), nil)
}
