// The item and its entities as a picture.  :param item_id => '1'
MATCH p = (i:Item {item_id: $item_id})-->(:Entity)
RETURN p
