-- wrk script: POST one interaction per request with the benchmark's API key.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["api-key"] = "benchmark-api-key"
wrk.body = '{"action":"view","userID":"wrk-user","userType":"visitor","originType":"page",'
  .. '"originID":"/pricing","deviceType":"desktop","properties":{"ref":"newsletter"}}'
