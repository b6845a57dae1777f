// Command callback-server is an example event-callback handler for
// rtmp-server: it verifies the JWT of each event, approves publishes whose
// key is in a fixed table and answers with a stream id, and logs stops.
//
//	JWT_SECRET=change-me go run ./examples/callback-server -listen 127.0.0.1:8080
//
// and run rtmp-server with CALLBACK_URL=http://127.0.0.1:8080/events and
// the same JWT_SECRET.
package main

import (
	"crypto/rand"
	"flag"
	"log"
	"net/http"
	"os"

	"github.com/golang-jwt/jwt/v5"
)

// keys maps a channel to the stream key allowed to publish it.
var keys = map[string]string{"live": "my-key"}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	secret := []byte(os.Getenv("JWT_SECRET"))
	if len(secret) == 0 {
		log.Fatal("set JWT_SECRET")
	}
	http.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(r.Header.Get("rtmp-event"), claims,
			func(*jwt.Token) (any, error) { return secret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithSubject("rtmp_event"), jwt.WithExpirationRequired())
		if err != nil {
			log.Printf("rejected token: %v", err)
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		channel, _ := claims["channel"].(string)
		switch claims["event"] {
		case "start":
			if key, _ := claims["key"].(string); key == "" || keys[channel] != key {
				log.Printf("start %s from %v: wrong key", channel, claims["client_ip"])
				http.Error(w, "invalid key", http.StatusForbidden)
				return
			}
			id := rand.Text()
			log.Printf("start %s from %v: stream %s", channel, claims["client_ip"], id)
			w.Header().Set("stream-id", id)
		case "stop":
			log.Printf("stop %s: stream %v", channel, claims["stream_id"])
		}
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}
