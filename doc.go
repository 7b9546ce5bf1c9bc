// Package errand holds the domain of errand, a hybrid synchronous/asynchronous API
// gateway: jobs and their statuses, events, operations, principals, and the error
// codes that every layer speaks. It imports only the standard library; the adapters
// (storage drivers, HTTP API, SDKs) live in sub-packages named after what they do.
package errand
