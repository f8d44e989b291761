package compose

import "github.com/tollgate-dev/tollgate/web/edge"

const AnonymousBodyLimit, UnknownTool = anonymousBodyLimit, edge.UnknownTool
