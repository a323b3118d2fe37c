// The item and its entities as a picture.  :param item_id => '1'
// Every query is scoped to one job's namespace:  :param ns => 'movielens-demo'
MATCH p = (i:Item {ns: $ns, item_id: $item_id})-->(:Entity)
RETURN p
