package graphql

// Served is the executable schema's own (for TestSDL).
var Served = served
